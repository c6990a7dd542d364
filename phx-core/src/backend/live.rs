//! Reading a process's output while it runs: both pipes at once, every line passed to a
//! [`LiveOutput`] as it arrives, all of it kept for the [`super::ExecOutput`]. Shared by every
//! backend that runs processes (local, ssh, `pct exec`, the fakes).

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use super::LiveOutput;

/// Read `stdout` and `stderr` to their ends, concurrently; with `live`, pass on each line
/// (lossy UTF-8, without `\n` or `\r\n`) as soon as it is complete, and a last line without a
/// line end when the pipe closes.
pub async fn read_output<O, E>(
    stdout: Option<O>,
    stderr: Option<E>,
    live: Option<&LiveOutput>,
) -> std::io::Result<(Vec<u8>, Vec<u8>)>
where
    O: AsyncRead + Unpin,
    E: AsyncRead + Unpin,
{
    let (out, err) = tokio::join!(read_one(stdout, live), read_one(stderr, live));
    Ok((out?, err?))
}

async fn read_one<R: AsyncRead + Unpin>(
    pipe: Option<R>,
    live: Option<&LiveOutput>,
) -> std::io::Result<Vec<u8>> {
    let mut all = Vec::new();
    let Some(pipe) = pipe else {
        return Ok(all);
    };
    let mut reader = BufReader::new(pipe);
    loop {
        let start = all.len();
        if reader.read_until(b'\n', &mut all).await? == 0 {
            return Ok(all);
        }
        if let Some(live) = live {
            let mut line = &all[start..];
            line = line.strip_suffix(b"\n").unwrap_or(line);
            line = line.strip_suffix(b"\r").unwrap_or(line);
            live.line(&String::from_utf8_lossy(line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_of_both_pipes_arrive_as_they_are_read_and_all_output_is_kept() {
        let (live, mut rx) = LiveOutput::channel();
        let out: &[u8] = b"one\r\ntwo\nlast without newline";
        let err: &[u8] = b"warn\n";
        let (o, e) = read_output(Some(out), Some(err), Some(&live))
            .await
            .unwrap();
        assert_eq!(o, out);
        assert_eq!(e, err);
        drop(live);
        let mut lines = Vec::new();
        while let Some(l) = rx.recv().await {
            lines.push(l);
        }
        lines.sort();
        assert_eq!(lines, ["last without newline", "one", "two", "warn"]);
    }

    #[tokio::test]
    async fn without_a_sink_or_a_pipe_the_output_is_just_read() {
        let out: &[u8] = b"x\ny";
        let (o, e) = read_output(Some(out), None::<&[u8]>, None).await.unwrap();
        assert_eq!(o, out);
        assert!(e.is_empty());
    }
}

//! `phx completions <shell>`.

use std::io::Write;

use anyhow::Context as _;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::EXIT_OK;

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, powershell or elvish
    pub shell: Shell,
}

pub fn run(a: &CompletionsArgs) -> anyhow::Result<u8> {
    let mut cmd = Cli::command();
    // clap_complete panics when its writer fails: generate into memory, then write
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "phx", &mut script);
    let mut out = std::io::stdout().lock();
    match out.write_all(&script).and_then(|()| out.flush()) {
        // `phx completions bash | head -1`: the reader has what it wanted
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(EXIT_OK),
        r => {
            r.context("writing the completion script to stdout")?;
            Ok(EXIT_OK)
        }
    }
}

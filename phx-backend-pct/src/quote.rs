//! POSIX shell quoting for arguments that cross `ssh`: ssh joins its remote arguments with
//! spaces and hands the string to the remote user's shell, so every argument is quoted to
//! arrive as exactly one word, byte for byte.

/// Quote `s` as one word for a POSIX shell: left bare when it holds only characters no shell
/// treats specially, otherwise wrapped in single quotes, each `'` written as `'\''`.
/// Newlines, `$`, backquotes, `;`, globs and spaces are all literal inside single quotes.
pub fn sh_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b));
    if safe {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Quote every argument and join them with spaces: one remote command line.
pub fn sh_join<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| sh_quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_stay_bare_and_the_rest_is_single_quoted() {
        assert_eq!(sh_quote("pct"), "pct");
        assert_eq!(
            sh_quote("local:vztmpl/debian-12.tar.zst"),
            "local:vztmpl/debian-12.tar.zst"
        );
        assert_eq!(sh_quote("name=eth0,bridge=vmbr0"), "name=eth0,bridge=vmbr0");
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(sh_quote("$HOME;rm -rf /"), "'$HOME;rm -rf /'");
        assert_eq!(sh_quote("a\nb"), "'a\nb'");
        assert_eq!(sh_quote("*"), "'*'");
        assert_eq!(sh_join(&["echo", "a b", "c"]), "echo 'a b' c");
    }
}

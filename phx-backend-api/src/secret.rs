//! Secrets that never show up in `Debug` output, logs or error messages: the API token's
//! secret, a password, a ticket and its CSRF token.

use std::fmt;

pub use phx_core::types::Secret;

/// Why a string is not an API token. The message never repeats the input (it holds the secret).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a Proxmox API token: {0} (expected USER@REALM!TOKENID=SECRET)")]
pub struct TokenError(&'static str);

/// A Proxmox API token, `USER@REALM!TOKENID=SECRET` (what `pveum user token add` shows).
/// `Debug` shows the token id, never the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    user: String,
    token_id: String,
    secret: Secret,
}

impl ApiToken {
    /// Parse `USER@REALM!TOKENID=SECRET`, optionally prefixed with `PVEAPIToken=` (the form of
    /// the `Authorization` header) and surrounded by whitespace (a token file's newline).
    /// Like Proxmox, the secret starts after the last `=`.
    pub fn parse(s: &str) -> Result<Self, TokenError> {
        let s = s.trim();
        let s = s
            .strip_prefix("PVEAPIToken=")
            .or_else(|| s.strip_prefix("PVEAPIToken "))
            .unwrap_or(s);
        let (id, secret) = s
            .rsplit_once('=')
            .ok_or(TokenError("no '=' before the secret"))?;
        let (user, token_id) = id
            .split_once('!')
            .ok_or(TokenError("no '!' between the user and the token id"))?;
        if !user.contains('@') || user.starts_with('@') || user.ends_with('@') {
            return Err(TokenError("the user is not USER@REALM"));
        }
        let name_ok = token_id
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && token_id.len() >= 2
            && token_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !name_ok {
            return Err(TokenError("the token id is not [A-Za-z][A-Za-z0-9.-_]+"));
        }
        if secret.is_empty() || secret.chars().any(char::is_whitespace) {
            return Err(TokenError("the secret is empty or contains whitespace"));
        }
        Ok(Self {
            user: user.to_string(),
            token_id: token_id.to_string(),
            secret: Secret::new(secret),
        })
    }

    /// `USER@REALM!TOKENID` (not secret: Proxmox shows it in task lists).
    pub fn full_id(&self) -> String {
        format!("{}!{}", self.user, self.token_id)
    }

    /// `USER@REALM`.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The `Authorization` header value, `PVEAPIToken=USER@REALM!TOKENID=SECRET`.
    pub fn header_value(&self) -> Secret {
        Secret::new(format!(
            "PVEAPIToken={}={}",
            self.full_id(),
            self.secret.expose()
        ))
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.full_id())
            .field("secret", &self.secret)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";

    #[test]
    fn token_parses_and_debug_hides_the_secret() {
        let t = ApiToken::parse(&format!("  root@pam!phx={SECRET}\n")).unwrap();
        assert_eq!(t.full_id(), "root@pam!phx");
        assert_eq!(
            t.header_value().expose(),
            format!("PVEAPIToken=root@pam!phx={SECRET}")
        );
        let dbg = format!("{t:?} {:?}", t.header_value());
        assert!(!dbg.contains(SECRET), "{dbg}");
        assert!(
            dbg.contains("root@pam!phx") && dbg.contains("<redacted>"),
            "{dbg}"
        );
        let again = ApiToken::parse(&format!("PVEAPIToken=root@pam!phx={SECRET}")).unwrap();
        assert_eq!(again, t);
    }

    #[test]
    fn bad_tokens_are_refused_without_echoing_them() {
        for bad in [
            "root@pam=s3cr3t-value",
            "root!phx=s3cr3t-value",
            "root@pam!phx=",
            "root@pam!9x=s3cr3t-value",
            "root@pam!phx",
        ] {
            let e = ApiToken::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("s3cr3t"), "{e}");
            assert!(e.starts_with("not a Proxmox API token"), "{e}");
        }
    }
}

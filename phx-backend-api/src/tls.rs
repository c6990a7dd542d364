//! TLS: the rustls client config for each trust mode, with the `ring` provider.
//!
//! - system roots (the platform verifier) by default;
//! - a CA file (`--ca-cert`, e.g. the cluster's `/etc/pve/pve-root-ca.pem`);
//! - a pinned SHA-256 fingerprint (`--fingerprint`, what the Proxmox GUI shows under
//!   Certificates): exactly that server certificate is accepted, whatever its issuer, name or
//!   dates, and the handshake signature is still verified against its key;
//! - `--insecure`: any certificate (the handshake signature is still checked, so the peer
//!   holds the key of the certificate it shows; nothing says whose key that is).

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::options::TlsMode;

/// A SHA-256 certificate fingerprint.
pub type Fingerprint = [u8; 32];

/// Parse `AA:BB:...` (32 bytes; colons optional, any case).
pub fn parse_fingerprint(s: &str) -> Result<Fingerprint, String> {
    let hex: String = s.trim().chars().filter(|c| *c != ':').collect();
    let bad = || format!("{s:?} is not a SHA-256 fingerprint (32 hex bytes, AA:BB:...)");
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// `AA:BB:...`, the way Proxmox shows fingerprints.
pub fn format_fingerprint(f: &[u8]) -> String {
    f.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The SHA-256 fingerprint of a DER certificate.
pub fn fingerprint_of(der: &[u8]) -> Fingerprint {
    Sha256::digest(der).into()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server showed another certificate than the pinned one.
#[derive(Debug)]
struct FingerprintMismatch {
    want: Fingerprint,
    got: Fingerprint,
}

impl fmt::Display for FingerprintMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server certificate's fingerprint {} is not the pinned {}",
            format_fingerprint(&self.got),
            format_fingerprint(&self.want)
        )
    }
}

impl std::error::Error for FingerprintMismatch {}

/// Accepts the one certificate whose fingerprint is pinned (`None`: any certificate).
#[derive(Debug)]
struct PinnedVerifier {
    want: Option<Fingerprint>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(want) = self.want else {
            return Ok(ServerCertVerified::assertion());
        };
        let got = fingerprint_of(end_entity.as_ref());
        if got == want {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(FingerprintMismatch { want, got })),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rustls client config for a trust mode (ring provider, TLS 1.2 and 1.3).
pub fn client_config(mode: &TlsMode) -> Result<rustls::ClientConfig, ApiError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ApiError::Config(format!("TLS setup: {e}")))?;
    let config = match mode {
        TlsMode::System => {
            use rustls_platform_verifier::BuilderVerifierExt as _;
            builder
                .with_platform_verifier()
                .map_err(|e| ApiError::Config(format!("loading the system's CA roots: {e}")))?
                .with_no_client_auth()
        }
        TlsMode::CaFile(path) => {
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| {
                ApiError::Config(format!("reading CA file {}: {e}", path.display()))
            })?;
            for c in certs {
                let c = c.map_err(|e| {
                    ApiError::Config(format!("reading CA file {}: {e}", path.display()))
                })?;
                roots
                    .add(c)
                    .map_err(|e| ApiError::Config(format!("CA file {}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(ApiError::Config(format!(
                    "CA file {} holds no PEM certificate",
                    path.display()
                )));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        TlsMode::Fingerprint(want) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                want: Some(*want),
                provider,
            }))
            .with_no_client_auth(),
        TlsMode::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                want: None,
                provider,
            }))
            .with_no_client_auth(),
    };
    Ok(config)
}

/// The rustls error somewhere in a transport error's source chain, described for people.
pub(crate) fn tls_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = find_rustls(err) {
            return Some(describe(t));
        }
        cur = err.source();
    }
    None
}

/// `err` as a rustls error, looking inside (nested) `io::Error`s, which hide their payload
/// from `source()`.
fn find_rustls<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(t) = err.downcast_ref::<rustls::Error>() {
        return Some(t);
    }
    let inner = err.downcast_ref::<std::io::Error>()?.get_ref()?;
    find_rustls(inner)
}

fn describe(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::Other(o)) => o.to_string(),
        rustls::Error::InvalidCertificate(c) => format!(
            "invalid server certificate ({c:?}); pass --ca-cert with the cluster's CA (pve-root-ca.pem) or --fingerprint with the certificate's SHA-256 fingerprint"
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_round_trip() {
        let f = fingerprint_of(b"not really a certificate");
        let s = format_fingerprint(&f);
        assert_eq!(s.len(), 95);
        assert_eq!(parse_fingerprint(&s).unwrap(), f);
        assert_eq!(
            parse_fingerprint(&s.replace(':', "").to_lowercase()).unwrap(),
            f
        );
        assert!(parse_fingerprint("AA:BB").is_err());
        assert!(parse_fingerprint(&"ZZ".repeat(32)).is_err());
    }
}

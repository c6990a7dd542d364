//! The server's certificates, made at start: a CA (like a node's `pve-root-ca.pem`) and a
//! leaf certificate for `localhost`, `127.0.0.1`, `::1` and the node names, signed by it (like
//! `pve-ssl.pem`). Clients pin the leaf's SHA-256 fingerprint or trust the CA.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

/// A CA and a leaf certificate with its key.
pub(crate) struct Certs {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// Leaf then CA.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key.
    pub key: PrivateKeyDer<'static>,
    /// SHA-256 of the leaf, `AA:BB:...`.
    pub fingerprint: String,
    /// Bytes only this server knows (ticket and CSRF signatures).
    pub secret: Vec<u8>,
}

fn err(e: rcgen::Error) -> std::io::Error {
    std::io::Error::other(format!("generating the fake server's certificate: {e}"))
}

/// `AA:BB:...` of a DER certificate.
pub(crate) fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Make the CA and a leaf valid for `names` (DNS names or IP addresses).
pub(crate) fn generate(names: &[String]) -> std::io::Result<Certs> {
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Proxmox Virtual Environment (phx fake)");
    ca.distinguished_name
        .push(DnType::OrganizationalUnitName, "phx fake-pve");
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::from_params(&ca, &ca_key);

    let leaf_key = KeyPair::generate().map_err(err)?;
    let mut leaf = CertificateParams::new(names.to_vec()).map_err(err)?;
    leaf.distinguished_name.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_else(|| "localhost".into()),
    );
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).map_err(err)?;

    let key_der = leaf_key.serialize_der();
    let secret = Sha256::digest(&key_der).to_vec();
    Ok(Certs {
        ca_pem: ca_cert.pem(),
        fingerprint: fingerprint(leaf_cert.der()),
        chain: vec![leaf_cert.der().clone(), ca_cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der)),
        secret,
    })
}

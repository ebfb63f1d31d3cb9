//! A throwaway PKI for TLS tests: one self-signed CA and one server certificate it signed,
//! written as PEM files that both switchyard and a PostgreSQL server can load.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::error::TestbedError;

/// A CA and a server certificate signed by it, in a temp dir removed on drop.
#[derive(Debug)]
pub struct TestPki {
    /// Holds the files; dropping it removes them.
    pub dir: tempfile::TempDir,
    /// The CA certificate (PEM), what a verify-full client trusts.
    pub ca_cert: PathBuf,
    /// The server certificate (PEM), signed by the CA.
    pub server_cert: PathBuf,
    /// The server's private key (PEM, PKCS#8, mode 0600).
    pub server_key: PathBuf,
}

/// Wraps an rcgen failure as the test bed's error, naming the step.
fn pki_err(what: &str, e: rcgen::Error) -> TestbedError {
    TestbedError::io(format!("test pki: {what}"), std::io::Error::other(e))
}

/// Writes a file and sets its mode explicitly, so the umask cannot make it unreadable to
/// a server running as another user (or a key too open for PostgreSQL to accept).
fn write(path: &Path, contents: &str, mode: u32) -> Result<(), TestbedError> {
    fs::write(path, contents)
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(mode)))
        .map_err(|e| TestbedError::io(format!("test pki: write {}", path.display()), e))
}

impl TestPki {
    /// Makes a CA and a server certificate for `hosts` (DNS names or IP addresses, e.g.
    /// "localhost" and "127.0.0.1"), valid from 1975 to 4096.
    pub fn generate(hosts: &[&str]) -> Result<TestPki, TestbedError> {
        let ca_key = KeyPair::generate().map_err(|e| pki_err("generate CA key", e))?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| pki_err("CA parameters", e))?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "switchyard test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .map_err(|e| pki_err("self-sign CA", e))?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().map_err(|e| pki_err("generate server key", e))?;
        let names: Vec<String> = hosts.iter().map(|h| (*h).to_owned()).collect();
        let mut params =
            CertificateParams::new(names).map_err(|e| pki_err("server parameters", e))?;
        params.distinguished_name.push(
            DnType::CommonName,
            hosts.first().copied().unwrap_or("switchyard test server"),
        );
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = params
            .signed_by(&server_key, &issuer)
            .map_err(|e| pki_err("sign server certificate", e))?;

        let dir = tempfile::Builder::new()
            .prefix("switchyard-pki-")
            .tempdir()
            .map_err(|e| TestbedError::io("test pki: create temp dir", e))?;
        // 0755 rather than tempfile's 0700, so a server running as `postgres` can reach the files.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755))
            .map_err(|e| TestbedError::io("test pki: chmod temp dir", e))?;
        let pki = TestPki {
            ca_cert: dir.path().join("ca.crt"),
            server_cert: dir.path().join("server.crt"),
            server_key: dir.path().join("server.key"),
            dir,
        };
        write(&pki.ca_cert, &ca_cert.pem(), 0o644)?;
        write(&pki.server_cert, &server_cert.pem(), 0o644)?;
        write(&pki.server_key, &server_key.serialize_pem(), 0o600)?;
        Ok(pki)
    }

    /// Gives the files to the `postgres` OS user when we are root, because PostgreSQL (run as
    /// that user, as the test bed does under root) refuses a key it does not own; otherwise a
    /// no-op, since PostgreSQL then runs as us and already owns them.
    pub fn chown_for_postgres(&self) -> Result<(), TestbedError> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(());
        }
        let user = nix::unistd::User::from_name("postgres")
            .ok()
            .flatten()
            .ok_or_else(|| TestbedError::NoUser("postgres".into()))?;
        for path in [&self.ca_cert, &self.server_cert, &self.server_key] {
            nix::unistd::chown(path.as_path(), Some(user.uid), Some(user.gid)).map_err(|e| {
                TestbedError::io(
                    format!("test pki: chown {} to postgres", path.display()),
                    e.into(),
                )
            })?;
        }
        Ok(())
    }
}

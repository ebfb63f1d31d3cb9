//! TLS for both sides of the proxy: the acceptor a listener runs after answering 'S' to a
//! client's SSLRequest, the connector towards backends, PostgreSQL's SSLRequest exchange with a
//! backend, and [`MaybeTls`], one stream type for plain and encrypted connections.
//!
//! Every config is built with an explicit ring provider, so nothing depends on rustls'
//! process-wide default provider being installed (or on which crate features picked it).

mod config;
mod error;

#[cfg(test)]
mod tests;

use std::io::{self, IoSlice};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

pub use config::*;
pub use error::TlsError;

/// The 8-byte SSLRequest: length 8, then request code 80877103 (1234 << 16 | 5679).
pub const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// ALPN protocol id PostgreSQL 17+ uses; older peers ignore it, newer ones check it.
pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";

fn provider() -> Arc<CryptoProvider> {
    Arc::new(ring::default_provider())
}

/// Reads a whole file, turning the io error into the caller's file-naming variant.
fn read_file(path: &Path, wrap: impl Fn(String) -> TlsError) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| wrap(format!("cannot read: {e}")))
}

/// All CERTIFICATE blocks of a PEM file; an empty result is an error because a file holding
/// only a key (a common mix-up) would otherwise surface later as an obscure handshake failure.
fn load_certs(
    path: &Path,
    wrap: impl Fn(String) -> TlsError,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(path, &wrap)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| wrap(format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(wrap("no CERTIFICATE block found (expected PEM)".into()));
    }
    Ok(certs)
}

/// Builds the acceptor for a listener (loads and validates cert and key; errors name the file and the reason).
pub fn acceptor(cfg: &ServerTlsConfig) -> Result<TlsAcceptor, TlsError> {
    let cert_err = |reason| TlsError::Cert {
        path: cfg.cert.clone(),
        reason,
    };
    let key_err = |reason| TlsError::Key {
        path: cfg.key.clone(),
        reason,
    };
    let certs = load_certs(&cfg.cert, cert_err)?;
    let key_pem = read_file(&cfg.key, key_err)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            key_err("no PKCS#8, PKCS#1 or SEC1 private key found (expected PEM)".into())
        }
        e => key_err(format!("invalid PEM: {e}")),
    })?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => key_err(format!(
                "does not match the certificate in {}",
                cfg.cert.display()
            )),
            e => key_err(format!("unusable with the certificate: {e}")),
        })?;
    // Clients that send no ALPN (libpq before 17, most drivers) are unaffected; libpq 17+
    // sends "postgresql" and a direct-TLS client requires it back.
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Builds the connector for backends (None for Disable; verify-full needs `ca`).
pub fn connector(cfg: &BackendTlsConfig) -> Result<Option<TlsConnector>, TlsError> {
    let cfg = cfg.clone().validate()?;
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = match (cfg.mode, &cfg.ca) {
        (BackendTlsMode::Disable, _) => return Ok(None),
        // libpq's sslmode=prefer/require only promise encryption, not authentication: the
        // server may well present a self-signed certificate, so nothing is checked but the
        // handshake signature (which proves the peer holds the key of the certificate it sent).
        (BackendTlsMode::Prefer | BackendTlsMode::Require, _) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert { provider }))
            .with_no_client_auth(),
        (BackendTlsMode::VerifyFull, Some(ca)) => {
            let ca_err = |reason| TlsError::Ca {
                path: ca.clone(),
                reason,
            };
            let mut roots = RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(load_certs(ca, ca_err)?);
            if added == 0 {
                return Err(ca_err(format!(
                    "none of its {ignored} certificates could be parsed"
                )));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        (BackendTlsMode::VerifyFull, None) => {
            return Err(TlsError::Config(
                "backend tls mode verify-full needs `ca`".into(),
            ))
        }
    };
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    Ok(Some(TlsConnector::from(Arc::new(config))))
}

/// Certificate verifier for `prefer` and `require`: any certificate, valid handshake signature.
#[derive(Debug)]
struct AcceptAnyCert {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
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
        rustls::crypto::verify_tls13_signature(
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

/// A client or server stream that is either plain TCP or TLS over TCP, usable as one AsyncRead + AsyncWrite type.
#[derive(Debug)]
pub enum MaybeTls {
    /// No encryption.
    Plain(TcpStream),
    /// A client connection the listener accepted with TLS.
    ServerTls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    /// A backend connection we opened with TLS.
    ClientTls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl MaybeTls {
    /// Whether the bytes on the wire are encrypted.
    pub fn is_tls(&self) -> bool {
        !matches!(self, MaybeTls::Plain(_))
    }

    /// The underlying socket, e.g. for set_nodelay/peer_addr (never read or write through it).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            MaybeTls::Plain(s) => s,
            MaybeTls::ServerTls(s) => s.get_ref().0,
            MaybeTls::ClientTls(s) => s.get_ref().0,
        }
    }
}

impl From<TcpStream> for MaybeTls {
    fn from(s: TcpStream) -> Self {
        MaybeTls::Plain(s)
    }
}

impl From<tokio_rustls::server::TlsStream<TcpStream>> for MaybeTls {
    fn from(s: tokio_rustls::server::TlsStream<TcpStream>) -> Self {
        MaybeTls::ServerTls(Box::new(s))
    }
}

impl From<tokio_rustls::client::TlsStream<TcpStream>> for MaybeTls {
    fn from(s: tokio_rustls::client::TlsStream<TcpStream>) -> Self {
        MaybeTls::ClientTls(Box::new(s))
    }
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::ServerTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            MaybeTls::ClientTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::ServerTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            MaybeTls::ClientTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTls::ServerTls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            MaybeTls::ClientTls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(s) => s.is_write_vectored(),
            MaybeTls::ServerTls(s) => s.is_write_vectored(),
            MaybeTls::ClientTls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::ServerTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            MaybeTls::ClientTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::ServerTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            MaybeTls::ClientTls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// PostgreSQL's SSLRequest handshake towards a backend: sends SSLRequest, then TLS on 'S', plain
/// on 'N' unless the mode demands TLS; `Disable` sends nothing and returns the stream as is.
pub async fn negotiate_backend(
    mut stream: TcpStream,
    connector: Option<&TlsConnector>,
    mode: BackendTlsMode,
    server_name: &str,
) -> Result<MaybeTls, TlsError> {
    if mode == BackendTlsMode::Disable {
        return Ok(MaybeTls::Plain(stream));
    }
    let Some(connector) = connector else {
        return Err(TlsError::Config(format!(
            "backend tls mode is {mode} but no tls connector was built"
        )));
    };
    // Brackets come from "[::1]:5432"-style addresses; the certificate holds the bare address.
    let host = server_name.trim_start_matches('[').trim_end_matches(']');
    let name = ServerName::try_from(host.to_owned()).map_err(|e| TlsError::ServerName {
        server: server_name.to_owned(),
        reason: e.to_string(),
    })?;
    let io_err = |source| TlsError::Io {
        server: server_name.to_owned(),
        source,
    };
    stream.write_all(&SSL_REQUEST).await.map_err(io_err)?;
    // Exactly one byte, unbuffered: anything a hostile server sends after 'S' must go into the
    // TLS handshake (and break it), never be taken as a plaintext reply (CVE-2021-23222).
    let mut answer = [0u8; 1];
    stream.read_exact(&mut answer).await.map_err(io_err)?;
    match answer[0] {
        b'S' => connector
            .connect(name, stream)
            .await
            .map(MaybeTls::from)
            .map_err(|source| TlsError::Handshake {
                server: server_name.to_owned(),
                source,
            }),
        b'N' if mode.requires_tls() => Err(TlsError::Refused {
            server: server_name.to_owned(),
            mode,
        }),
        b'N' => Ok(MaybeTls::Plain(stream)),
        byte => Err(TlsError::UnexpectedAnswer {
            server: server_name.to_owned(),
            byte,
        }),
    }
}

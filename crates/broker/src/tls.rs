//! TLS configuration for the wss/https listener and for ingest: the
//! certificate chain and key from PEM files, swapped on SIGHUP without
//! touching open connections, and an optional client CA (mutual TLS).
//!
//! One `rustls::ServerConfig` per endpoint is built at start and shared by
//! every thread that accepts on it; its certificate comes from a
//! [`ReloadableCert`] resolver, so a reload replaces what *new* handshakes
//! get while the config — with its session cache and ticket keys, so
//! resumption keeps working across a reload — stays the same.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{
    ClientHello, ResolvesServerCert, ServerSessionMemoryCache, WebPkiClientVerifier,
};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};

/// Resumable sessions kept per endpoint (TLS 1.2 session IDs and TLS 1.3
/// stateful tickets); stateless tickets need no server memory at all.
const SESSION_CACHE: usize = 4096;

/// A TLS file that could not be used, named (never its contents).
#[derive(Debug, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct TlsError {
    pub path: PathBuf,
    pub problem: String,
}

fn err(path: &Path, problem: impl Into<String>) -> TlsError {
    TlsError {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

/// The crypto everything here uses: *ring* (no C build toolchain beyond
/// `cc`), with rustls' default, modern cipher suites.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificate new handshakes get; replaced by [`ReloadableCert::reload`].
#[derive(Debug)]
pub struct ReloadableCert {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ReloadableCert {
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<ReloadableCert, TlsError> {
        let key = load_certified_key(cert_file, key_file)?;
        Ok(ReloadableCert {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            current: RwLock::new(Arc::new(key)),
        })
    }

    /// Re-reads both files; on any error the old certificate stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = load_certified_key(&self.cert_file, &self.key_file)?;
        *self.current.write() = Arc::new(key);
        Ok(())
    }

    pub fn cert_file(&self) -> &Path {
        &self.cert_file
    }
}

impl ResolvesServerCert for ReloadableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // A read lock per handshake (rare next to deliveries); never per
        // record or per quote.
        Some(self.current.read().clone())
    }
}

/// A PEM chain (leaf first) and its private key, checked to match.
fn load_certified_key(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = load_certs(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| err(key_file, format!("no usable PEM private key ({e})")))?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| {
        err(
            key_file,
            format!("key does not fit the certificate or is unsupported ({e})"),
        )
    })
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| err(path, format!("cannot read PEM certificates ({e})")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(path, format!("bad PEM certificate ({e})")))?;
    if certs.is_empty() {
        return Err(err(path, "no certificate in the file"));
    }
    Ok(certs)
}

/// A client certificate verifier requiring a chain to a CA in `ca_file`.
fn client_verifier(ca_file: &Path) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca_file)? {
        roots
            .add(cert)
            .map_err(|e| err(ca_file, format!("not a usable CA certificate ({e})")))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| err(ca_file, format!("cannot verify clients with it ({e})")))
}

/// An endpoint's TLS: the shared server config and its reloadable
/// certificate.
pub struct TlsEndpoint {
    pub config: Arc<ServerConfig>,
    pub cert: Arc<ReloadableCert>,
}

impl TlsEndpoint {
    /// `alpn`: protocols offered (`http/1.1` for the WebSocket listener;
    /// none for ingest). `client_ca`: require client certificates from it.
    pub fn new(
        cert_file: &Path,
        key_file: &Path,
        client_ca: Option<&Path>,
        alpn: &[&[u8]],
    ) -> Result<TlsEndpoint, TlsError> {
        let cert = Arc::new(ReloadableCert::load(cert_file, key_file)?);
        let builder = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| err(cert_file, e.to_string()))?;
        let builder = match client_ca {
            Some(ca) => builder.with_client_cert_verifier(client_verifier(ca)?),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(cert.clone());
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE);
        config.ticketer = rustls::crypto::ring::Ticketer::new()
            .map_err(|e| err(cert_file, format!("cannot make session tickets ({e})")))?;
        // Two tickets per full handshake (rustls' default is 4): enough for
        // a reconnect and a retry, less work per handshake.
        config.send_tls13_tickets = 2;
        // After a TLS 1.3 handshake rustls hands the traffic keys to the
        // broker's own record layer (transport/tls_records.rs), which
        // keeps 44 bytes a direction where rustls kept ~1.6 KB.
        config.enable_secret_extraction = true;
        // Its key updates then derive from the traffic secrets, taken by a
        // key log that writes nowhere (transport/tls_secrets.rs), so that
        // rustls' ~1 KB key schedule need not be kept either.
        config.key_log = crate::transport::traffic_secret_log();
        Ok(TlsEndpoint {
            config: Arc::new(config),
            cert,
        })
    }
}

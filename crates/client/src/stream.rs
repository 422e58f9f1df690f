//! The client's byte stream: plain TCP or TLS (rustls, blocking), with the
//! CA to trust given explicitly (a file or a ready `ClientConfig`).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use crate::{ClientError, Result};

/// How to reach a TLS endpoint (`wss://`, ingest over TLS).
#[derive(Clone)]
pub struct TlsOptions {
    config: Arc<ClientConfig>,
    /// The name the server's certificate must carry (a DNS name or an IP).
    pub server_name: String,
}

impl TlsOptions {
    /// Trust the CA certificate(s) in `ca_file` (PEM) and expect
    /// `server_name` in the server's certificate.
    pub fn with_ca_file(ca_file: &Path, server_name: &str) -> Result<TlsOptions> {
        Self::build(ca_file, server_name, None)
    }

    /// As [`TlsOptions::with_ca_file`], presenting a client certificate
    /// (mutual TLS on ingest).
    pub fn with_client_cert(
        ca_file: &Path,
        server_name: &str,
        cert_file: &Path,
        key_file: &Path,
    ) -> Result<TlsOptions> {
        Self::build(
            ca_file,
            server_name,
            Some((cert_file.to_owned(), key_file.to_owned())),
        )
    }

    /// A ready rustls config (tests, the load generator's shared config).
    pub fn with_config(config: Arc<ClientConfig>, server_name: &str) -> TlsOptions {
        TlsOptions {
            config,
            server_name: server_name.to_owned(),
        }
    }

    fn build(
        ca_file: &Path,
        server_name: &str,
        client: Option<(PathBuf, PathBuf)>,
    ) -> Result<TlsOptions> {
        let tls_err =
            |what: &str, e: &dyn std::fmt::Display| ClientError::Tls(format!("{what}: {e}"));
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca_file)
            .map_err(|e| tls_err(&ca_file.display().to_string(), &e))?
        {
            let cert = cert.map_err(|e| tls_err(&ca_file.display().to_string(), &e))?;
            roots
                .add(cert)
                .map_err(|e| tls_err(&ca_file.display().to_string(), &e))?;
        }
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| tls_err("protocol versions", &e))?
                .with_root_certificates(roots);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some((cert_file, key_file)) => {
                let chain = CertificateDer::pem_file_iter(&cert_file)
                    .map_err(|e| tls_err(&cert_file.display().to_string(), &e))?
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| tls_err(&cert_file.display().to_string(), &e))?;
                let key = PrivateKeyDer::from_pem_file(&key_file)
                    .map_err(|e| tls_err(&key_file.display().to_string(), &e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| tls_err(&key_file.display().to_string(), &e))?
            }
        };
        Ok(TlsOptions {
            config: Arc::new(config),
            server_name: server_name.to_owned(),
        })
    }

    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }
}

pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// Wraps a connected socket in TLS; the handshake runs on first use.
    pub fn tls(sock: TcpStream, options: &TlsOptions) -> Result<Stream> {
        let name = ServerName::try_from(options.server_name.clone())
            .map_err(|e| ClientError::Tls(format!("server name {:?}: {e}", options.server_name)))?;
        let conn = ClientConnection::new(options.config.clone(), name)
            .map_err(|e| ClientError::Tls(e.to_string()))?;
        Ok(Stream::Tls(Box::new(StreamOwned::new(conn, sock))))
    }

    /// The TCP socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => t.get_ref(),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

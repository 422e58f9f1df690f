//! `[tls]` and `[ingest.tls]`: certificate files for the wss/https listener
//! and for ingest. Absent sections mean no TLS there.

use std::path::Path;

use serde::Deserialize;

/// `[tls]`: the wss/https listener (every route of the plain listener).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Listener address (`wss://HOST:PORT/ws`).
    #[serde(default = "default_tls_addr")]
    pub addr: String,
    /// PEM certificate chain, leaf first.
    pub cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
}

fn default_tls_addr() -> String {
    "0.0.0.0:8443".into()
}

/// `[ingest.tls]`: producers connect over TLS; with `client_ca_file` they
/// must present a certificate signed by that CA (mutual TLS).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestTlsConfig {
    pub cert_file: String,
    pub key_file: String,
    #[serde(default)]
    pub client_ca_file: Option<String>,
}

impl TlsConfig {
    pub fn cert_path(&self) -> &Path {
        Path::new(&self.cert_file)
    }
    pub fn key_path(&self) -> &Path {
        Path::new(&self.key_file)
    }
}

impl IngestTlsConfig {
    pub fn cert_path(&self) -> &Path {
        Path::new(&self.cert_file)
    }
    pub fn key_path(&self) -> &Path {
        Path::new(&self.key_file)
    }
    pub fn client_ca_path(&self) -> Option<&Path> {
        self.client_ca_file.as_deref().map(Path::new)
    }
}

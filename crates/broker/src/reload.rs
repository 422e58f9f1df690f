//! SIGHUP: what a running broker re-reads without a restart (certificates
//! and keys, the JWT verification key), each kept as it was when its file
//! fails to load.

use crate::{auth, tls, Broker};

impl Broker {
    /// SIGHUP: re-reads certificates and keys ([`Broker::reload_tls`]) and
    /// the JWT verification key ([`Broker::reload_auth`]).
    pub fn reload(&self) {
        self.reload_tls();
        self.reload_auth();
    }

    /// Re-reads the JWT verification key file; on error the old key stays
    /// and the file is named in the log (never its contents).
    pub fn reload_auth(&self) -> Option<auth::KeyError> {
        let auth = self.auth.as_ref()?;
        match auth.reload() {
            Ok(()) => {
                if let Some(file) = auth.key_file() {
                    tracing::info!(key_file = %file.display(), "JWT key reloaded");
                }
                None
            }
            Err(e) => {
                tracing::error!(file = %e.what, problem = %e.problem, "JWT key not reloaded; keeping the old one");
                Some(e)
            }
        }
    }

    /// SIGHUP: re-reads every configured certificate and key. New
    /// handshakes get the new ones; open connections are untouched. A file
    /// that fails to load keeps the old certificate, and is logged by name.
    /// Returns the errors (empty when everything reloaded).
    pub fn reload_tls(&self) -> Vec<tls::TlsError> {
        let mut errors = Vec::new();
        for cert in &self.certs {
            match cert.reload() {
                Ok(()) => {
                    tracing::info!(cert_file = %cert.cert_file().display(), "certificate reloaded")
                }
                Err(e) => {
                    tracing::error!(file = %e.path.display(), problem = %e.problem, "certificate not reloaded; keeping the old one");
                    errors.push(e);
                }
            }
        }
        errors
    }
}

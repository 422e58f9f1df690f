//! TLS for the end-to-end tests: a CA, server and client certificates made
//! at test time (rcgen) into files, and clients (rustls) that verify the
//! chain against that CA — no verification is ever turned off.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use tickwire_client::TlsOptions;

use super::PATIENCE;

/// A test CA and what it signed, as PEM files in a fresh directory.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub client_cert_file: PathBuf,
    pub client_key_file: PathBuf,
    ca_cert: rcgen::Certificate,
    ca_key: KeyPair,
    ca_der: CertificateDer<'static>,
}

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

impl Pki {
    pub fn new() -> Pki {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "pki-{}-{}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "tickwire test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let ca_der = ca_cert.der().clone();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).unwrap();
        let mut pki = Pki {
            cert_file: dir.join("server.pem"),
            key_file: dir.join("server-key.pem"),
            client_cert_file: dir.join("client.pem"),
            client_key_file: dir.join("client-key.pem"),
            dir,
            ca_file,
            ca_cert,
            ca_key,
            ca_der,
        };
        pki.issue_server("tickwire test server");
        let (cert, key) = pki.issue(&[], "tickwire test producer", true);
        std::fs::write(&pki.client_cert_file, cert).unwrap();
        std::fs::write(&pki.client_key_file, key).unwrap();
        pki
    }

    /// (Re)writes the server certificate and key files, with this common
    /// name (so a test can tell certificates apart).
    pub fn issue_server(&mut self, common_name: &str) {
        let (cert, key) = self.issue(&["localhost", "127.0.0.1"], common_name, false);
        std::fs::write(&self.cert_file, cert).unwrap();
        std::fs::write(&self.key_file, key).unwrap();
    }

    /// A certificate signed by the CA: (chain PEM, key PEM).
    fn issue(&self, names: &[&str], common_name: &str, client: bool) -> (String, String) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca_cert, &self.ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A rustls client config trusting only this CA.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client_config_with(None)
    }

    /// The same, presenting the test producer certificate.
    pub fn client_config_with_cert(&self) -> Arc<ClientConfig> {
        let chain = vec![CertificateDer::from_pem_file(&self.client_cert_file).unwrap()];
        let key = PrivateKeyDer::from_pem_file(&self.client_key_file).unwrap();
        self.client_config_with(Some((chain, key)))
    }

    /// A client config offering only these protocol versions.
    pub fn client_config_versions(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<ClientConfig> {
        self.build(versions, None)
    }

    fn client_config_with(
        &self,
        client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    ) -> Arc<ClientConfig> {
        self.build(rustls::DEFAULT_VERSIONS, client)
    }

    fn build(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
        client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(versions)
                .unwrap()
                .with_root_certificates(roots);
        let mut config = match client {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    pub fn options(&self) -> TlsOptions {
        TlsOptions::with_config(self.client_config(), "localhost")
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

use rustls::pki_types::pem::PemObject;

pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// A TLS connection to `addr` verified against `config`'s CA, handshake
/// completed.
pub fn tls_connect(addr: SocketAddr, config: &Arc<ClientConfig>) -> TlsStream {
    tls_connect_on(TcpStream::connect(addr).unwrap(), config)
}

/// [`tls_connect`] over a socket already connected.
pub fn tls_connect_on(sock: TcpStream, config: &Arc<ClientConfig>) -> TlsStream {
    sock.set_nodelay(true).unwrap();
    sock.set_read_timeout(Some(PATIENCE)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(config.clone(), name).unwrap();
    let mut stream = StreamOwned::new(conn, sock);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .expect("TLS handshake");
    }
    stream
}

/// The leaf certificate's common name as the server presented it.
pub fn peer_common_name(stream: &TlsStream) -> String {
    let der = stream.conn.peer_certificates().unwrap()[0].to_vec();
    // Good enough for tests: find the CN we wrote (UTF8String after the
    // CommonName OID 2.5.4.3).
    let oid = [0x06, 0x03, 0x55, 0x04, 0x03];
    let at = der
        .windows(oid.len())
        .rposition(|w| w == oid)
        .expect("a common name");
    let len = der[at + 6] as usize;
    String::from_utf8_lossy(&der[at + 7..at + 7 + len]).into_owned()
}

/// Sends a raw HTTP request over TLS; returns the whole response.
pub fn https(addr: SocketAddr, config: &Arc<ClientConfig>, request: &str) -> String {
    let mut s = tls_connect(addr, config);
    s.write_all(request.as_bytes()).unwrap();
    s.flush().unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

//! A real `nats-server -js` on a free loopback port, for the cluster tests
//! (Debian's `nats-server`; `scripts/test.sh` installs it when missing),
//! and a proxy in front of it that holds a broker's link back.

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};

use super::wait_until;

pub struct NatsServer {
    port: u16,
    store: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server with JetStream, its store in a fresh temporary dir.
    pub fn start() -> NatsServer {
        NatsServer::start_with(&[])
    }

    /// With more `nats-server` arguments (TLS, authorization).
    pub fn start_with(args: &[&str]) -> NatsServer {
        let port = free_port();
        let store =
            std::env::temp_dir().join(format!("tickwire-nats-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&store);
        let mut server = NatsServer {
            port,
            store,
            args: args.iter().map(|a| a.to_string()).collect(),
            child: None,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGKILL: a crash, not a goodbye) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port with the same store.
    pub fn restart(&mut self) {
        self.kill();
        let bin = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
        let child = Command::new(&bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(&self.store)
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {bin}: {e} (./scripts/test.sh installs it; or apt-get install nats-server)")
            });
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        assert!(
            wait_until(|| TcpStream::connect(addr).is_ok()),
            "nats-server listens on {addr}"
        );
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

/// A TCP forwarder in front of a NATS server that holds every connection,
/// forwarding nothing either way, until [`GatedProxy::open`]: a broker
/// pointed at it has a cluster link that cannot set up for as long as a
/// test needs (its client times out and retries meanwhile, also held).
pub struct GatedProxy {
    addr: SocketAddr,
    gate: Arc<Gate>,
}

#[derive(Default)]
struct Gate {
    /// (open, dropped)
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl Gate {
    fn set(&self, open: bool, dropped: bool) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *state = (state.0 || open, state.1 || dropped);
        self.changed.notify_all();
    }

    fn dropped(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).1
    }

    /// Waits until opened; false when the proxy is dropped instead.
    fn wait_open(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while !state.0 && !state.1 {
            state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.0 && !state.1
    }
}

impl GatedProxy {
    /// Listening on a free loopback port, closed.
    pub fn start(nats: &NatsServer) -> GatedProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy listens");
        let addr = listener.local_addr().expect("proxy address");
        let upstream = SocketAddr::from(([127, 0, 0, 1], nats.port));
        let gate = Arc::new(Gate::default());
        let accepting = gate.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if accepting.dropped() {
                    return;
                }
                let Ok(client) = client else { continue };
                let gate = accepting.clone();
                std::thread::spawn(move || {
                    if gate.wait_open() {
                        if let Ok(server) = TcpStream::connect(upstream) {
                            forward(client, server);
                        }
                    }
                });
            }
        });
        GatedProxy { addr, gate }
    }

    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// Forwards every held connection, and every later one, at once.
    pub fn open(&self) {
        self.gate.set(true, false);
    }
}

impl Drop for GatedProxy {
    fn drop(&mut self) {
        self.gate.set(false, true);
        // Wakes the accept loop, which then sees it is dropped.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copies both ways until either side closes.
fn forward(client: TcpStream, server: TcpStream) {
    let (Ok(mut client_in), Ok(mut server_out)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    std::thread::spawn(move || {
        let _ = io::copy(&mut client_in, &mut server_out);
        let _ = server_out.shutdown(Shutdown::Write);
    });
    let (mut server_in, mut client_out) = (server, client);
    let _ = io::copy(&mut server_in, &mut client_out);
    let _ = client_out.shutdown(Shutdown::Write);
}

/// A loopback port nothing listens on now (for a broker whose address a
/// test must know before `Broker::start` returns).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

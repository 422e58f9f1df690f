//! One churn connection on the blocking `tickwire_client::Subscriber`:
//! connect, `auth` (with tokens), subscribe and wait for the ack, read
//! quotes into per-topic seq tracking (`super::streams::Streams`, which
//! outlives a connection: a resumer carries it over), refresh the token
//! while reading or not, and say how the connection ended (`Ended`).

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use tickwire_client::{ws_path, ClientError, ServerMessage, SubscribeOptions, Subscriber};

use super::counts::Env;
use super::streams::Streams;
use crate::receiver::Format;

/// Longest wait for a TCP connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a reply (the ack of a subscribe or an unsubscribe).
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest single blocking read, so a token refresh is never late by more.
const READ_SLICE: Duration = Duration::from_millis(250);

/// How a connection ended early.
#[derive(Debug)]
pub enum Ended {
    /// Close 1008 `slow consumer`.
    SlowConsumer,
    /// The socket dropped without a close frame read (EOF, reset): how the
    /// broker ends a reader that does not even read its close frame.
    Dropped(String),
    /// A close frame with another code or reason.
    Closed(String),
    /// Anything else: an error reply, a protocol error, no reply in time.
    Failed(String),
}

impl Ended {
    fn of(e: ClientError) -> Ended {
        match e {
            ClientError::Closed {
                code: Some(1008),
                reason,
            } if reason == "slow consumer" => Ended::SlowConsumer,
            ClientError::Closed { code: None, reason } => Ended::Dropped(reason),
            ClientError::Closed { code, reason } => {
                Ended::Closed(format!("closed by the broker ({code:?}, {reason:?})"))
            }
            ClientError::Io(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::UnexpectedEof
                ) =>
            {
                Ended::Dropped(format!("connection dropped: {e}"))
            }
            e => Ended::Failed(e.to_string()),
        }
    }

    /// The event as text, for `Env::problem`.
    pub fn describe(&self, who: &str) -> String {
        match self {
            Ended::SlowConsumer => format!("{who}: closed as a slow consumer"),
            Ended::Dropped(m) | Ended::Closed(m) | Ended::Failed(m) => format!("{who}: {m}"),
        }
    }
}

/// Where a churn connection goes, and how.
#[derive(Clone, Copy, Debug)]
pub struct Dial {
    pub ws: SocketAddr,
    /// SO_RCVBUF set before connecting (slow and stalled readers): what the
    /// reader leaves unread then backs up into the broker within a second
    /// instead of filling a window the kernel grew to megabytes. (Set
    /// after the connect it would not shrink the window, only stall it.)
    pub receive_buffer: Option<usize>,
}

impl Dial {
    /// To `ws`, with the kernel's receive buffer.
    pub fn to(ws: SocketAddr) -> Dial {
        Dial {
            ws,
            receive_buffer: None,
        }
    }

    fn connect(self) -> std::io::Result<TcpStream> {
        let sock = Socket::new(
            Domain::for_address(self.ws),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        if let Some(bytes) = self.receive_buffer {
            sock.set_recv_buffer_size(bytes)?;
        }
        sock.connect_timeout(&self.ws.into(), CONNECT_TIMEOUT)?;
        Ok(sock.into())
    }
}

/// The acknowledgement of a subscribe.
pub struct Ack {
    pub epoch: String,
    pub recovered: Option<bool>,
    pub unrecovered: Vec<String>,
}

pub struct Session {
    sub: Subscriber,
    refresh_at: Option<Instant>,
    next_id: u64,
}

impl Session {
    /// Connects as `dial` says, sends a token (with `--hs256-secret-file`),
    /// and subscribes `topics` with `options`; returns once the ack is in.
    pub fn open(
        env: &Env<'_>,
        dial: Dial,
        topics: &[&str],
        options: SubscribeOptions,
        streams: &mut Streams,
    ) -> Result<(Session, Ack), Ended> {
        let load = &env.plan.load;
        let format = match load.format {
            Format::Json => tickwire_client::Format::Json,
            Format::Binary => tickwire_client::Format::Binary,
        };
        let path = ws_path(format, load.delta);
        let tls = load.tls.as_ref().map(|t| t.client_options());
        let sub = dial
            .connect()
            .map_err(ClientError::from)
            .and_then(|tcp| Subscriber::connect_over(tcp, &path, tls.as_ref()))
            .map_err(|e| Ended::Failed(format!("connect {}: {e}", dial.ws)))?;
        let mut s = Session {
            sub,
            refresh_at: None,
            next_id: 1,
        };
        if let Some(tokens) = &env.plan.tokens {
            s.sub
                .send_text(&tokens.auth_request(None))
                .map_err(Ended::of)?;
            s.refresh_at = Some(Instant::now() + tokens.refresh_every());
        }
        let id = s.id();
        s.sub
            .subscribe(
                topics,
                SubscribeOptions {
                    id: Some(id),
                    ..options
                },
            )
            .map_err(Ended::of)?;
        match s.reply(env, streams, id)? {
            ServerMessage::Subscribed {
                epoch,
                recovered,
                unrecovered,
                ..
            } => Ok((
                s,
                Ack {
                    epoch,
                    recovered,
                    unrecovered,
                },
            )),
            other => Err(Ended::Failed(format!("subscribe answered {other:?}"))),
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Sends a fresh token when one is due, without reading.
    pub fn refresh_if_due(&mut self, env: &Env<'_>) -> Result<(), Ended> {
        let (Some(at), Some(tokens)) = (self.refresh_at, &env.plan.tokens) else {
            return Ok(());
        };
        let now = Instant::now();
        if now < at {
            return Ok(());
        }
        self.sub
            .send_text(&tokens.auth_request(None))
            .map_err(Ended::of)?;
        self.refresh_at = Some(now + tokens.refresh_every());
        env.count(|c| c.tokens.refreshes += 1);
        Ok(())
    }

    /// Reads one message, waiting at most `wait`: quotes go to `streams`,
    /// `authed` replies are counted; anything else is handed back.
    fn next(
        &mut self,
        env: &Env<'_>,
        streams: &mut Streams,
        wait: Duration,
    ) -> Result<Option<ServerMessage>, Ended> {
        match self.sub.next(wait.min(READ_SLICE)).map_err(Ended::of)? {
            Some(ServerMessage::Quote { quote, seq }) => streams.observe(&quote.topic, seq),
            Some(ServerMessage::Delta { topic, seq, .. }) => streams.observe(&topic, seq),
            Some(ServerMessage::Authed { .. }) => env.count(|c| c.tokens.authed += 1),
            Some(ServerMessage::Error { code, message, .. }) => {
                return Err(Ended::Failed(format!("error {code}: {message}")))
            }
            other => return Ok(other),
        }
        Ok(None)
    }

    /// Reads until `until`, refreshing the token when due.
    pub fn pump(
        &mut self,
        env: &Env<'_>,
        streams: &mut Streams,
        until: Instant,
    ) -> Result<(), Ended> {
        loop {
            self.refresh_if_due(env)?;
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            if let Some(m) = self.next(env, streams, until - now)? {
                return Err(Ended::Failed(format!("unexpected {m:?}")));
            }
        }
    }

    /// Sends a ping: how a reader that comes back finds out whether its
    /// connection is still there. A broker that gave up on a reader whose
    /// receive window was closed may have vanished without a word reaching
    /// it (its kernel dropped the orphaned socket); the ping draws the
    /// reset, which the next read reports (`Ended::Dropped`).
    pub fn ping(&mut self) -> Result<(), Ended> {
        self.sub.ping().map_err(Ended::of)
    }

    /// Reads nothing until `until` (refreshing the token meanwhile).
    pub fn hold(&mut self, env: &Env<'_>, until: Instant) -> Result<(), Ended> {
        while Instant::now() < until {
            self.refresh_if_due(env)?;
            std::thread::sleep(READ_SLICE.min(until.saturating_duration_since(Instant::now())));
        }
        Ok(())
    }

    /// Subscribes `topic` (with its snapshot) or unsubscribes it, and waits
    /// for the ack. After an unsubscribe the topic's position is forgotten:
    /// its next quote, once subscribed again, is a new baseline.
    pub fn set_subscribed(
        &mut self,
        env: &Env<'_>,
        streams: &mut Streams,
        topic: &str,
        subscribe: bool,
    ) -> Result<(), Ended> {
        let id = self.id();
        let sent = if subscribe {
            let options = SubscribeOptions {
                id: Some(id),
                ..Default::default()
            };
            self.sub.subscribe(&[topic], options)
        } else {
            self.sub.unsubscribe(&[topic], Some(id))
        };
        sent.map_err(Ended::of)?;
        match (subscribe, self.reply(env, streams, id)?) {
            (true, ServerMessage::Subscribed { .. }) => Ok(()),
            (false, ServerMessage::Unsubscribed { .. }) => {
                streams.rebase(topic);
                Ok(())
            }
            (_, other) => Err(Ended::Failed(format!("{topic}: answered {other:?}"))),
        }
    }

    /// Reads until the reply to request `id`.
    fn reply(
        &mut self,
        env: &Env<'_>,
        streams: &mut Streams,
        id: u64,
    ) -> Result<ServerMessage, Ended> {
        let deadline = Instant::now() + REPLY_TIMEOUT;
        loop {
            self.refresh_if_due(env)?;
            let now = Instant::now();
            if now >= deadline {
                return Err(Ended::Failed(format!(
                    "no reply to request {id} within {REPLY_TIMEOUT:?}"
                )));
            }
            match self.next(env, streams, deadline - now)? {
                None => {}
                Some(m @ ServerMessage::Subscribed { id: Some(i), .. })
                | Some(m @ ServerMessage::Unsubscribed { id: Some(i), .. })
                    if i == id =>
                {
                    return Ok(m)
                }
                Some(m) => return Err(Ended::Failed(format!("unexpected {m:?}"))),
            }
        }
    }

    /// Closes the connection: with a close frame (`clean`), or by dropping
    /// the socket as a cut network would.
    pub fn close(mut self, clean: bool) {
        if clean {
            let _ = self.sub.close(1000);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closes_are_told_apart() {
        let slow = ClientError::Closed {
            code: Some(1008),
            reason: "slow consumer".into(),
        };
        assert!(matches!(Ended::of(slow), Ended::SlowConsumer));
        let expired = ClientError::Closed {
            code: Some(1008),
            reason: "token expired".into(),
        };
        assert!(matches!(Ended::of(expired), Ended::Closed(_)));
        let reset = ClientError::Io(std::io::Error::from(ErrorKind::ConnectionReset));
        assert!(matches!(Ended::of(reset), Ended::Dropped(_)));
        let eof = ClientError::Closed {
            code: None,
            reason: "connection closed without a close frame".into(),
        };
        assert!(matches!(Ended::of(eof), Ended::Dropped(_)));
        let proto = ClientError::Protocol("bad".into());
        assert!(matches!(Ended::of(proto), Ended::Failed(_)));
    }
}

//! The subscriber core: one subscriber's protocol state and rules —
//! requests (the JSON control protocol), subscriptions, entitlements,
//! request and snapshot rates, the reply gate, delivery and `max_hz`, and
//! the slow-consumer rules — whatever framing carries them. It writes
//! through a [`Cx`]: the connection's outbound queue, the [`Framing`] that
//! frames its replies, and the actions for the shell. It never sees a
//! frame, a header or a socket.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use crate::moment::Moment;

use tickwire_protocol::control::{parse_request, ErrorCode, Request, Since};
use tickwire_protocol::server;

use super::catch_up::Ask;
use super::framing::{Ending, Framing};
use super::gate::{AwaitedAck, ReplyGate};
use super::outbound::{OutFrame, Outbound};
use super::rate::{RequestBucket, SnapshotBucket};
use super::subscriptions::{Subscriptions, MAX_AWAITING};
use super::{entitlements, Action, Effects, SessionConfig};
use crate::auth::GrantSet;
use crate::config::SlowConsumerPolicy;
use crate::encodings::Wire;
use crate::messages::Format;

/// Subscribe commands of one connection waiting for the router before the
/// broker stops reading that connection.
const MAX_PENDING_COMMANDS: u64 = 64;

/// What one core step writes to.
pub(super) struct Cx<'a> {
    pub config: &'a SessionConfig,
    pub framing: &'a dyn Framing,
    pub out: &'a mut Outbound,
    pub fx: &'a mut Effects,
    pub now: Instant,
}

/// What the last accepted token granted; the anonymous grants apply besides.
pub(super) struct TokenGrant {
    pub grants: GrantSet,
    /// The token's `exp`: the stream ends (`token expired`) then, unless
    /// refreshed.
    pub expires: Option<Instant>,
}

pub(super) struct Subscriber {
    pub subs: Subscriptions,
    /// Replies held behind subscribe commands the router has not taken.
    pub gate: ReplyGate,
    /// The last accepted token (with `[auth]`); boxed, since most
    /// connections never send one and every idle connection pays for its
    /// inline size.
    pub token: Option<Box<TokenGrant>>,
    pub requests: RequestBucket,
    pub snapshots: SnapshotBucket,
}

impl Subscriber {
    pub(super) fn new(config: &SessionConfig, wire: Wire, now: Instant) -> Subscriber {
        Subscriber {
            subs: Subscriptions::new(wire),
            gate: ReplyGate::default(),
            token: None,
            requests: RequestBucket::full(config.request_burst, now),
            snapshots: SnapshotBucket::full(config.snapshots_per_second, now),
        }
    }

    /// False while too many of its subscribes wait for the router, or its
    /// input is held ([`Subscriber::input_held`]): its input is not read until
    /// then (bounded memory per connection, one snapshot request at a time).
    pub(super) fn wants_input(&self) -> bool {
        self.gate.pending() < MAX_PENDING_COMMANDS && !self.input_held()
    }

    /// True while a snapshot request waits for its answer: requests after
    /// it wait (buffered) — see `SnapshotBucket`; and while
    /// [`MAX_AWAITING`] subscribes wait for theirs.
    pub(super) fn input_held(&self) -> bool {
        self.snapshots.outstanding() || self.subs.awaiting() == MAX_AWAITING
    }

    /// Whether the subscribe just made is all this connection awaits from
    /// the router: no other answer, no catch-up slices to come. Only then
    /// may the worker answer it itself (see `worker::following`) without
    /// overtaking an answer the router still owes.
    pub(super) fn awaits_only_the_last(&self) -> bool {
        self.subs.awaiting() == 1 && !self.subs.catching_up()
    }

    /// One request (a JSON text). Returns why the stream must end, if it
    /// must (its unread replies passed the budget).
    pub(super) fn on_request(&mut self, text: &str, cx: &mut Cx<'_>) -> Option<Ending> {
        let request = parse_request(text);
        let (per_second, burst) = (cx.config.requests_per_second, cx.config.request_burst);
        if !self.requests.take(per_second, burst, cx.now) {
            // Not executed; the id echoed as for any error.
            let id = match &request {
                Ok(Request::Subscribe { id, .. })
                | Ok(Request::Unsubscribe { id, .. })
                | Ok(Request::Auth { id, .. }) => *id,
                Err(e) => e.id,
            };
            cx.fx
                .actions
                .push(Action::RequestError(ErrorCode::RateLimited));
            let reply = server::json_error(
                id,
                ErrorCode::RateLimited,
                &format!("over {per_second} requests per second"),
            );
            self.reply(&reply, cx);
            return self.check_reply_budget(cx);
        }
        let reply = match request {
            Ok(Request::Auth { id, token }) => {
                self.on_auth(id, &token, cx);
                return self.check_reply_budget(cx);
            }
            Ok(Request::Subscribe {
                id,
                topics,
                snapshot,
                max_hz,
                since,
                rewind,
            }) => {
                let ask = Ask {
                    snapshot,
                    max_hz,
                    rewind,
                    since: None,
                    window: cx.config.outbound_budget_bytes / 2,
                    resume_from: None,
                };
                match self.on_subscribe(id, &topics, ask, since.as_ref(), cx) {
                    Some(reply) => reply,
                    // A resume's ack is made when the router answers.
                    None => return self.check_reply_budget(cx),
                }
            }
            Ok(Request::Unsubscribe { id, topics }) => {
                self.subs.unsubscribe(&topics, cx.out, cx.fx);
                server::json_unsubscribed(id, &topics)
            }
            Err(e) => {
                cx.fx.actions.push(Action::RequestError(e.code));
                server::json_error(e.id, e.code, &e.message)
            }
        };
        self.reply(&reply, cx);
        self.check_reply_budget(cx)
    }

    /// A subscribe: the error to queue, or None (the ack waits in the
    /// reply gate).
    fn on_subscribe<'a>(
        &mut self,
        id: Option<u64>,
        topics: &[Cow<'_, str>],
        ask: Ask<'a>,
        since: Option<&'a Since>,
        cx: &mut Cx<'_>,
    ) -> Option<String> {
        match self.subscribe(id, topics, ask, since, cx) {
            Ok(()) => None,
            Err((code, message)) => {
                cx.fx.actions.push(Action::RequestError(code));
                Some(server::json_error(id, code, &message))
            }
        }
    }

    /// Applies a subscribe, or says why not (nothing applied). Its ack
    /// waits in the reply gate (see `gate.rs`). An SSE
    /// stream's request comes here directly: its refusal is an HTTP status.
    pub(super) fn subscribe<'a>(
        &mut self,
        id: Option<u64>,
        topics: &[Cow<'_, str>],
        mut ask: Ask<'a>,
        since: Option<&'a Since>,
        cx: &mut Cx<'_>,
    ) -> Result<(), (ErrorCode, String)> {
        let config = cx.config;
        let epoch = config.epoch.current();
        ask.since = since.map(|s| (s, s.epoch == *epoch));
        let snapshot = ask.snapshot;
        let resumes = since.is_some_and(|s| !s.seqs.is_empty()) || ask.resume_from.is_some();
        let denied = entitlements::first_uncovered(config, self, topics);
        let snapshots = config.snapshots_per_second;
        let result = match denied {
            Some(topic) => Err((
                ErrorCode::NotAuthorized,
                format!("not authorized for {topic:?}"),
            )),
            None if snapshot && !self.snapshots.allows(snapshots, cx.now) => Err((
                ErrorCode::RateLimited,
                format!(
                    "over {snapshots} snapshot quotes per second; retry later or subscribe with \"snapshot\":false"
                ),
            )),
            None => self
                .subs
                .subscribe(topics, ask, config.max_subscriptions, cx.fx),
        };
        result?;
        let request = self.subs.last_request();
        if snapshot {
            self.snapshots.reserve(snapshots, request);
        }
        // Held until the router has taken the command, then until the
        // next delivery (see `gate.rs`).
        self.gate.issue();
        if resumes {
            self.gate.await_activation(AwaitedAck {
                request,
                id,
                topics: topics.iter().map(|t| t.to_string()).collect(),
            });
        } else {
            let ack = match since {
                None => server::json_subscribed(id, topics, &epoch),
                // Nothing to resume: every topic of it is recovered.
                Some(_) => server::json_subscribed_resumed(id, topics, &epoch, &[]),
            };
            self.gate.ack(cx.framing.message(&ack));
        }
        Ok(())
    }

    /// The router activated subscribe `request`: its ack goes now (for a
    /// resume, made now, naming the topics not recovered), before any of
    /// its quotes, with the replies held behind it.
    pub(super) fn on_activated(
        &mut self,
        request: u32,
        unrecovered: Option<&[Arc<str>]>,
        config: &SessionConfig,
        framing: &dyn Framing,
        out: &mut Outbound,
    ) {
        let epoch = config.epoch.current();
        let names: Vec<&str> = unrecovered
            .unwrap_or_default()
            .iter()
            .map(|t| &**t)
            .collect();
        let released = self.gate.activated(request, |ack| {
            framing.message(&server::json_subscribed_resumed(
                ack.id,
                &ack.topics,
                &epoch,
                &names,
            ))
        });
        for reply in released {
            out.push_data(OutFrame::Owned(reply));
        }
    }

    /// Queues a reply behind the reply gate.
    pub(super) fn reply(&mut self, json: &str, cx: &mut Cx<'_>) {
        if let Some(frame) = self.gate.reply(cx.framing.message(json)) {
            cx.out.push_data(OutFrame::Owned(frame));
        }
    }

    /// Replies count against the outbound budget: a client whose unread
    /// replies pass it (it floods requests and never reads) is ended as a
    /// slow consumer, so its replies cannot grow without bound.
    fn check_reply_budget(&self, cx: &Cx<'_>) -> Option<Ending> {
        let held = self.gate.held_bytes();
        (cx.out.reply_bytes() + held > cx.config.outbound_budget_bytes)
            .then_some(Ending::SlowConsumer)
    }

    /// The router has taken this connection's oldest pending subscribe
    /// command: the replies held behind it may go.
    pub(super) fn on_command_taken(&mut self, out: &mut Outbound) {
        for reply in self.gate.taken() {
            out.push_data(OutFrame::Owned(reply));
        }
    }

    /// The periodic checks of the core: the slow-consumer rules (nothing
    /// taken by the socket since `progress_at` for `stall_timeout` while
    /// something waits, or — policy `disconnect` — conflating for
    /// `disconnect_after`) and token expiry.
    pub(super) fn on_tick(
        &self,
        config: &SessionConfig,
        out: &Outbound,
        progress_at: Instant,
        now: Instant,
    ) -> Option<Ending> {
        let stalled =
            !out.is_empty() && now.saturating_duration_since(progress_at) >= config.stall_timeout;
        let over_budget_too_long = config.slow_consumer_policy == SlowConsumerPolicy::Disconnect
            && out.conflating_since().is_some_and(|since| {
                now.saturating_duration_since(since) >= config.disconnect_after
            });
        if stalled || over_budget_too_long {
            return Some(Ending::SlowConsumer);
        }
        self.token_expired(now).then_some(Ending::TokenExpired)
    }

    /// The earliest instant [`Subscriber::on_tick`] can end the stream.
    pub(super) fn poll_timeout(
        &self,
        config: &SessionConfig,
        out: &Outbound,
        progress_at: Moment,
    ) -> Option<Moment> {
        let stall = (!out.is_empty()).then(|| progress_at + config.stall_timeout);
        let disconnect = match config.slow_consumer_policy {
            SlowConsumerPolicy::Disconnect => out
                .conflating_since()
                .map(|since| Moment::from(since) + config.disconnect_after),
            _ => None,
        };
        let expiry = self
            .token
            .as_ref()
            .and_then(|t| t.expires)
            .map(Moment::from);
        [stall, disconnect, expiry].into_iter().flatten().min()
    }

    /// The subscriber leaves: every entry is given back, and a snapshot the
    /// router may still be collecting is cancelled.
    pub(super) fn leave(&mut self, fx: &mut Effects) {
        if self.subs.asked_snapshots() {
            fx.actions.push(Action::CancelSnapshots);
        }
        self.subs.clear(fx);
        fx.actions.push(match self.subs.format() {
            Format::Sse | Format::SseBare => Action::LeftSse,
            Format::Json | Format::Binary => Action::Left,
        });
    }
}

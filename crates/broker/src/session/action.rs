//! What a connection asks its shell to do ([`Action`]), collected per event
//! in [`Effects`].

use std::sync::Arc;
use std::time::Instant;

use tickwire_protocol::control::ErrorCode;
use tickwire_protocol::Selector;

use super::topic_names::TopicNames;
use crate::messages::CatchUp;

/// What the shell must do on a connection's behalf.
#[derive(Debug, PartialEq)]
pub enum Action {
    /// Send the router this subscribe. `added` are the entries it created
    /// (interest may change); call [`Connection::on_command_taken`] once the
    /// router has it.
    Subscribe {
        request: u32,
        selectors: Vec<Selector>,
        added: Vec<Selector>,
        catch_up: CatchUp,
    },
    /// Route live quotes matching `selector` to this connection, with this
    /// `max_hz` (replacing any earlier one).
    Route {
        selector: Selector,
        max_hz: Option<f32>,
    },
    /// Stop routing quotes matching `selector` here.
    Unroute(Selector),
    /// These entries are gone: release the connection's interest in them.
    Release(Vec<Selector>),
    /// The connection left while its snapshot was outstanding: the router
    /// stops collecting it.
    CancelSnapshots,
    /// The connection has room for the next slice of its catch-up: tell
    /// the router (`RouterCmd::CatchUpCredit`).
    CatchUpCredit,
    /// Call [`Connection::on_timer`] for `topic` at `at`.
    ArmTimer { at: Instant, topic: Arc<str> },
    /// The connection became a subscriber (upgrade done).
    Opened,
    /// The connection became an SSE stream (`/sse`).
    OpenedSse,
    /// The connection stopped being a subscriber.
    Left,
    /// An SSE stream left.
    LeftSse,
    /// Subscription entries added (+) or removed (−).
    SubscriptionsChanged(i64),
    /// A request was answered with this error.
    RequestError(ErrorCode),
    /// A close frame with this code was queued; `slow_consumer` when it
    /// is the slow-consumer close.
    CloseSent { code: u16, slow_consumer: bool },
    /// Stop reading the socket: the peer leaves too many of our pongs
    /// unread, too many of its subscribes wait for the router, or a
    /// snapshot request waits for its answer (bounded memory per
    /// connection; the peer feels TCP back-pressure).
    PauseRead,
    /// Read the socket again: what held its input (unread pongs, subscribes
    /// waiting for the router, a snapshot request waiting for its answer)
    /// has cleared. Until then the shell does not read it.
    ResumeRead,
    /// The last bytes of a closing connection are out: half-close the
    /// socket (the peer then has `close_timeout` to close its side).
    ShutdownWrite,
    /// Drop the connection now, without further writes.
    Drop,
}

/// Effects of one or more events, collected by the shell: actions in
/// order, and the quotes conflated away (a counter, not an action: it can
/// happen for every quote of a slow reader).
#[derive(Debug, Default)]
pub struct Effects {
    pub actions: Vec<Action>,
    pub conflated: u64,
    /// The worker's shared topic texts, for the selectors of requests
    /// (not an effect: the one piece of worker state a connection uses,
    /// carried with the effects every call already takes).
    pub names: TopicNames,
}

//! What a subscribe asks the router for before its live quotes: the v1
//! snapshot, or (v1.2) a rewind, or a resume from the client's positions.
//! The session decides what only it knows — whether the client's epoch is
//! the broker's, and which topics' deciding entry has `max_hz` (the client
//! then asked for conflation: only the newest quote is due) — and the
//! router, which holds the history, decides what is recovered.

use std::sync::Arc;

use tickwire_protocol::control::Since;
use tickwire_protocol::PrefixIndex;

use super::subscriptions::Entry;
use crate::messages::{CatchUp, Resume};

/// What a subscribe asks for before its live quotes.
pub(super) struct Ask<'a> {
    pub snapshot: bool,
    pub max_hz: Option<f64>,
    /// v1.2: up to this many recent quotes instead of the snapshot.
    pub rewind: Option<u16>,
    /// v1.2: the client's position, and whether its epoch is the broker's.
    pub since: Option<(&'a Since, bool)>,
    /// Frame bytes per slice of a paced catch-up (`CatchUp::window`).
    pub window: usize,
}

/// What the router sends before live quotes, the entries applied: a
/// topic of `since` whose deciding entry (the most specific) has
/// `max_hz` asked for conflation, so only its newest quote is due.
pub(super) fn ask_router(
    entries: &PrefixIndex<Entry>,
    snapshot: bool,
    rewind: Option<u16>,
    since: Option<(&Since, bool)>,
    window: usize,
) -> CatchUp {
    let (resume, epoch_matches) = match since {
        Some((since, epoch_matches)) => {
            let resume = since
                .seqs
                .iter()
                .map(|(topic, after)| Resume {
                    topic: Arc::from(topic.as_str()),
                    after: *after,
                    newest_only: entries
                        .most_specific(topic)
                        .is_some_and(|e| e.max_hz.is_some()),
                })
                .collect();
            (resume, epoch_matches)
        }
        None => (Vec::new(), true),
    };
    CatchUp {
        snapshot,
        rewind: rewind.unwrap_or(0),
        resume,
        epoch_matches,
        // Only a replay or rewind is paced: a snapshot conflates harmlessly.
        window: if rewind.is_some() || since.is_some() {
            window
        } else {
            0
        },
    }
}

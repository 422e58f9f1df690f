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
use crate::messages::{CatchUp, Resume, ResumeFrom};

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
    /// SSE `Last-Event-ID`: resume every topic from this broker's accept
    /// count, and whether the id was this broker's (else all unrecovered).
    pub resume_from: Option<(u64, bool)>,
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
    resume_from: Option<(u64, bool)>,
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
    // An SSE stream's one request: its entries share their `max_hz`.
    let resume_from = resume_from.map(|(accepted, valid)| {
        let newest_only = entries.iter().any(|(_, e)| e.max_hz.is_some());
        (
            ResumeFrom {
                accepted,
                newest_only,
            },
            valid,
        )
    });
    CatchUp {
        snapshot,
        rewind: rewind.unwrap_or(0),
        resume,
        resume_from: resume_from.map(|(from, _)| from),
        epoch_matches: resume_from.map_or(epoch_matches, |(_, valid)| valid),
        // Only a replay or rewind is paced: a snapshot conflates harmlessly.
        window: if rewind.is_some() || since.is_some() || resume_from.is_some() {
            window
        } else {
            0
        },
    }
}

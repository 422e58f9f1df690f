//! Field deltas (v1.2, `delta=1`) turned back into full quotes: the
//! client keeps the last quote per topic of the connection and applies
//! each delta to it. The broker only sends a delta that follows the quote
//! of `seq - 1` it sent this connection, so a delta without that base is a
//! broken stream, reported as an error, never guessed at.

use std::collections::HashMap;

use tickwire_protocol::server::ServerMessage;
use tickwire_protocol::Quote;

/// A delta arrived whose base (the quote of `seq - 1` of its topic) this
/// connection does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("delta of {topic} seq {seq} without the quote before it")]
pub struct MissingBase {
    pub topic: String,
    pub seq: u64,
}

/// One connection's last quotes, for rebuilding deltas. Start a new one
/// (or [`Deltas::clear`]) per connection: a new connection begins with
/// full quotes. An unsubscribe forgets nothing: the broker sends a delta
/// only after the very quote it sent this connection last for the topic,
/// so a base held here is never stale (and forgetting a topic that another
/// entry still covers would make its next delta unusable).
#[derive(Debug, Default)]
pub struct Deltas {
    last: HashMap<String, (u64, Quote)>,
}

impl Deltas {
    /// Passes every message through, a delta rebuilt as the full
    /// `ServerMessage::Quote` it stands for; a quote is remembered.
    pub fn apply(&mut self, message: ServerMessage) -> Result<ServerMessage, MissingBase> {
        match message {
            ServerMessage::Quote { quote, seq } => {
                match self.last.get_mut(&quote.topic) {
                    Some(held) => *held = (seq, quote.clone()),
                    None => {
                        self.last.insert(quote.topic.clone(), (seq, quote.clone()));
                    }
                }
                Ok(ServerMessage::Quote { quote, seq })
            }
            ServerMessage::Delta {
                topic,
                seq,
                ts,
                changes,
            } => {
                let held = self
                    .last
                    .get_mut(&topic)
                    .filter(|(last, _)| last.checked_add(1) == Some(seq));
                let Some((last, quote)) = held else {
                    // The topic's state is no longer trustworthy.
                    self.last.remove(&topic);
                    return Err(MissingBase { topic, seq });
                };
                changes.apply(quote);
                quote.ts = ts;
                *last = seq;
                Ok(ServerMessage::Quote {
                    quote: quote.clone(),
                    seq,
                })
            }
            other => Ok(other),
        }
    }

    /// Forgets everything (a new connection).
    pub fn clear(&mut self) {
        self.last.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickwire_protocol::server::FieldChanges;

    fn quote(topic: &str, bid: f64) -> Quote {
        Quote {
            topic: topic.into(),
            bid,
            ask: 2.0,
            bid_size: 3.0,
            ask_size: 4.0,
            last: 5.0,
            volume: 6.0,
            ts: 1,
        }
    }

    fn delta(topic: &str, seq: u64, mask: u8, values: [f64; 6]) -> ServerMessage {
        ServerMessage::Delta {
            topic: topic.into(),
            seq,
            ts: 99,
            changes: FieldChanges { mask, values },
        }
    }

    #[test]
    fn a_delta_after_its_base_is_the_full_quote() {
        let mut d = Deltas::default();
        d.apply(ServerMessage::Quote {
            quote: quote("A", 1.0),
            seq: 7,
        })
        .unwrap();
        let got = d
            .apply(delta("A", 8, 0b1, [-0.0, 0.0, 0.0, 0.0, 0.0, 0.0]))
            .unwrap();
        let mut want = quote("A", -0.0);
        want.ts = 99;
        let ServerMessage::Quote { quote: q, seq } = got else {
            panic!()
        };
        assert_eq!(seq, 8);
        assert_eq!(q.bid.to_bits(), (-0.0f64).to_bits());
        assert_eq!((q.ask, q.ts), (want.ask, want.ts));
        // And the next delta builds on that one.
        assert!(d
            .apply(delta("A", 9, 0b10, [0.0, 7.0, 0.0, 0.0, 0.0, 0.0]))
            .is_ok());
    }

    #[test]
    fn a_delta_without_its_base_is_an_error_and_clears_the_topic() {
        let mut d = Deltas::default();
        assert_eq!(
            d.apply(delta("A", 1, 1, [0.0; 6])),
            Err(MissingBase {
                topic: "A".into(),
                seq: 1
            })
        );
        d.apply(ServerMessage::Quote {
            quote: quote("A", 1.0),
            seq: 7,
        })
        .unwrap();
        assert!(d.apply(delta("A", 9, 1, [0.0; 6])).is_err());
        // Cleared: even seq 8 has no base now.
        assert!(d.apply(delta("A", 8, 1, [0.0; 6])).is_err());
    }

    #[test]
    fn clear_forgets_the_base_and_an_unsubscribe_does_not() {
        let mut d = Deltas::default();
        d.apply(ServerMessage::Quote {
            quote: quote("A", 1.0),
            seq: 1,
        })
        .unwrap();
        // An entry `A*` may still cover A: its next delta must still apply.
        d.apply(ServerMessage::Unsubscribed {
            id: None,
            topics: vec!["A".into()],
            reason: None,
        })
        .unwrap();
        assert!(d.apply(delta("A", 2, 1, [0.0; 6])).is_ok());
        d.clear();
        assert!(d.apply(delta("A", 3, 1, [0.0; 6])).is_err());
    }
}

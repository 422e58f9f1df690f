//! Entitlements in the WebSocket phase: the `auth` request, the coverage
//! check on subscribe, narrowing on refresh, and expiry.

use std::time::{Duration, Instant};

use tickwire_protocol::control::ErrorCode;
use tickwire_protocol::{server, Selector};
use tickwire_ws::close;

use super::frames::queue_reply;
use super::{Action, Connection, Effects, Phase, Session, SessionConfig, TokenGrant};
use crate::auth::covers;

/// With `[auth]`, the first requested topic no grant of the connection
/// covers (anonymous grants, then the token's); None when all are covered
/// or entitlements are off.
pub(super) fn first_uncovered<'t>(
    config: &SessionConfig,
    session: &Session,
    topics: &'t [String],
) -> Option<&'t str> {
    let auth = config.auth.as_ref()?;
    topics.iter().map(String::as_str).find(|topic| {
        // Syntax was checked by the parser; an unparsable one is not ours
        // to judge here.
        Selector::parse(topic).is_some_and(|s| {
            !covers(&auth.anonymous, &s)
                && !session
                    .token
                    .as_ref()
                    .is_some_and(|t| covers(&t.grants, &s))
        })
    })
}

impl Connection {
    /// `{"op":"auth","token":...}`: verify, replace the grants, drop the
    /// entries they no longer cover, and arm the expiry.
    pub(super) fn on_auth(&mut self, id: Option<u64>, token: &str, now: Instant, fx: &mut Effects) {
        let config = self.config.clone();
        let Phase::Ws(session) = &mut self.phase else {
            return;
        };
        let Some(auth) = &config.auth else {
            fx.actions.push(Action::RequestError(ErrorCode::BadRequest));
            let reply = server::json_error(
                id,
                ErrorCode::BadRequest,
                "auth is not configured on this broker",
            );
            return queue_reply(session, &mut self.out, &reply);
        };
        let unix_now = config.wall.unix_secs(now);
        let granted = match auth.verify(token, unix_now) {
            Ok(granted) => granted,
            Err(why) => {
                // The connection keeps whatever it was granted before.
                fx.actions
                    .push(Action::RequestError(ErrorCode::NotAuthorized));
                let reply = server::json_error(id, ErrorCode::NotAuthorized, &why);
                return queue_reply(session, &mut self.out, &reply);
            }
        };
        session.token = Some(Box::new(TokenGrant {
            grants: granted.grants,
            // An `exp` too far away for `Instant` arithmetic never comes.
            expires: now.checked_add(Duration::from_secs(granted.exp - unix_now)),
        }));
        let reply = server::json_authed(id, granted.sub.as_deref(), granted.exp);
        queue_reply(session, &mut self.out, &reply);

        // Narrowing: entries the new grants (and the anonymous ones) no
        // longer cover are removed, and the client is told.
        let grants = session.token.as_ref().map(|t| &t.grants);
        let revoked: Vec<String> = session
            .subs
            .entries_written()
            .into_iter()
            .filter(|written| {
                Selector::parse(written).is_some_and(|s| {
                    !covers(&auth.anonymous, &s) && !grants.is_some_and(|g| covers(g, &s))
                })
            })
            .collect();
        if !revoked.is_empty() {
            session.subs.unsubscribe(&revoked, &mut self.out, fx);
            let reply = server::json_revoked(&revoked, "not_authorized");
            queue_reply(session, &mut self.out, &reply);
        }
    }

    /// True when the connection's token has expired (checked by `on_tick`).
    pub(super) fn token_expired(&self, now: Instant) -> bool {
        match &self.phase {
            Phase::Ws(session) => session
                .token
                .as_ref()
                .and_then(|t| t.expires)
                .is_some_and(|at| now >= at),
            _ => false,
        }
    }

    /// Closes a connection whose token expired without a refresh.
    pub(super) fn close_expired(&mut self, now: Instant, fx: &mut Effects) {
        self.close_with(close::POLICY_VIOLATION, "token expired", now, fx);
    }
}

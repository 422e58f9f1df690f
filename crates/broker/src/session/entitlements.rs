//! Entitlements in the subscriber core: the `auth` request, the coverage
//! check on subscribe, narrowing on refresh, and expiry.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use tickwire_protocol::control::ErrorCode;
use tickwire_protocol::{server, Selector};

use super::subscriber::{Cx, Subscriber, TokenGrant};
use super::{Action, SessionConfig};
use crate::auth::covers;

/// With `[auth]`, the first requested topic no grant of the connection
/// covers (anonymous grants, then the token's); None when all are covered
/// or entitlements are off.
pub(super) fn first_uncovered<'t>(
    config: &SessionConfig,
    session: &Subscriber,
    topics: &'t [Cow<'_, str>],
) -> Option<&'t str> {
    let auth = config.auth.as_ref()?;
    topics.iter().map(|t| &**t).find(|topic| {
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

impl Subscriber {
    /// `{"op":"auth","token":...}`: verify, replace the grants, drop the
    /// entries they no longer cover, and arm the expiry.
    /// Verifies `token` and takes its grants, without a reply: an SSE
    /// stream's token comes with its request. Without `[auth]` a token
    /// means nothing and is ignored. The error says why it is refused.
    pub(super) fn grant(
        &mut self,
        token: &str,
        config: &SessionConfig,
        now: Instant,
    ) -> Result<(), String> {
        let Some(auth) = &config.auth else {
            return Ok(());
        };
        let unix_now = config.wall.unix_secs(now);
        let granted = auth.verify(token, unix_now)?;
        self.token = Some(Box::new(TokenGrant {
            grants: granted.grants,
            expires: now.checked_add(Duration::from_secs(granted.exp.saturating_sub(unix_now))),
        }));
        Ok(())
    }

    pub(super) fn on_auth(&mut self, id: Option<u64>, token: &str, cx: &mut Cx<'_>) {
        let config = cx.config;
        let Some(auth) = &config.auth else {
            cx.fx
                .actions
                .push(Action::RequestError(ErrorCode::BadRequest));
            let reply = server::json_error(
                id,
                ErrorCode::BadRequest,
                "auth is not configured on this broker",
            );
            return self.reply(&reply, cx);
        };
        let unix_now = config.wall.unix_secs(cx.now);
        let granted = match auth.verify(token, unix_now) {
            Ok(granted) => granted,
            Err(why) => {
                // The connection keeps whatever it was granted before.
                cx.fx
                    .actions
                    .push(Action::RequestError(ErrorCode::NotAuthorized));
                let reply = server::json_error(id, ErrorCode::NotAuthorized, &why);
                return self.reply(&reply, cx);
            }
        };
        self.token = Some(Box::new(TokenGrant {
            grants: granted.grants,
            // An `exp` too far away for `Instant` arithmetic never comes.
            expires: cx
                .now
                .checked_add(Duration::from_secs(granted.exp.saturating_sub(unix_now))),
        }));
        let reply = server::json_authed(id, granted.sub.as_deref(), granted.exp);
        self.reply(&reply, cx);

        // Narrowing: entries the new grants (and the anonymous ones) no
        // longer cover are removed, and the client is told.
        let grants = self.token.as_ref().map(|t| &t.grants);
        let revoked: Vec<Cow<'_, str>> = self
            .subs
            .entries_written()
            .into_iter()
            .filter(|written| {
                Selector::parse(written).is_some_and(|s| {
                    !covers(&auth.anonymous, &s) && !grants.is_some_and(|g| covers(g, &s))
                })
            })
            .map(Cow::Owned)
            .collect();
        if !revoked.is_empty() {
            self.subs.unsubscribe(&revoked, cx.out, cx.fx);
            let reply = server::json_revoked(&revoked, "not_authorized");
            self.reply(&reply, cx);
        }
    }

    /// True when the connection's token has expired.
    pub(super) fn token_expired(&self, now: Instant) -> bool {
        self.token
            .as_ref()
            .and_then(|t| t.expires)
            .is_some_and(|at| now >= at)
    }
}

//! The dashboard's and the JavaScript client's files, embedded in the
//! binary: no build step, no files to deploy. The page is built on the
//! JavaScript client (clients/js), served as is with its decoder (the one
//! documented in docs/protocol.md), so the page, the client package and the
//! docs can never disagree. Both are ES modules that import each other by
//! relative URL: every file is served at `/` + its name. The table is made
//! by `build.rs` from `assets/`: (path, content type, body).

pub(super) const ASSETS: &[(&str, &str, &str)] = include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The content type and body served at exactly `path`.
pub(super) fn find_asset(path: &str) -> Option<(&'static str, &'static str)> {
    ASSETS
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|&(_, content_type, body)| (content_type, body))
}

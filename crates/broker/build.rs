//! Embeds the dashboard and the JavaScript client: every file under
//! `assets/dashboard/` and `assets/client/` becomes a route of the asset
//! table (`$OUT_DIR/assets.rs`, included by `src/http/assets.rs`), served
//! at `/` + its file name (`index.html` at `/`). The client's files are
//! links to `clients/js/src/` (one copy of the client in the repository;
//! `cargo package` stores what they point to), so a new module of either
//! needs no code change: only the file (or its link).

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut table = String::from("&[\n");
    let mut count = 0;
    for dir in ["dashboard", "client"] {
        let dir = root.join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|entry| entry.expect("a directory entry").path())
            .collect();
        files.sort();
        for file in files {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .expect("asset file names are UTF-8")
                .to_owned();
            let content_type = match file.extension().and_then(|e| e.to_str()) {
                Some("html") => "text/html; charset=utf-8",
                Some("js") => "text/javascript; charset=utf-8",
                Some("css") => "text/css; charset=utf-8",
                // Type declarations and the like stay out of the page.
                _ => continue,
            };
            let route = if name == "index.html" {
                "/".to_owned()
            } else {
                format!("/{name}")
            };
            println!("cargo:rerun-if-changed={}", file.display());
            let path = file.canonicalize().expect("an asset's link resolves");
            writeln!(
                table,
                "    ({route:?}, {content_type:?}, include_str!({path:?})),",
                path = path.display().to_string()
            )
            .expect("writing to a String");
            count += 1;
        }
    }
    table.push(']');
    assert!(count > 0, "no assets under {}", root.display());
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("assets.rs");
    std::fs::write(&out, table).expect("writing the asset table");
}

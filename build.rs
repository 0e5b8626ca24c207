//! Embeds the SQL migrations (`migrations/<backend>/<version>_<description>.sql`) in the
//! server, as `sqlx::migrate!` would, without compiling sqlx's macros: those build a second
//! copy of sqlx and SQLite for the compiler, minutes of a first build.

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let mut code = String::new();
    for backend in ["sqlite", "postgres"] {
        writeln!(
            code,
            "pub const {}: &[(i64, &str, &str)] = &[",
            backend.to_uppercase()
        )
        .expect("writing to a String");
        for (version, description, path) in migrations(&root.join("migrations").join(backend)) {
            writeln!(
                code,
                "    ({version}, {description:?}, include_str!({path:?})),"
            )
            .expect("writing to a String");
        }
        code.push_str("];\n");
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    std::fs::write(out.join("migrations.rs"), code).expect("writing migrations.rs");
}

/// The folder's migrations in version order, named as sqlx names them: the version before the
/// first `_`, the rest without `.sql` and with spaces for `_`.
fn migrations(dir: &Path) -> Vec<(i64, String, PathBuf)> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("reading a migrations entry").path())
        .filter_map(|path| {
            let name = path.file_name()?.to_str()?.to_owned();
            let (version, rest) = name.split_once('_')?;
            let description = rest.strip_suffix(".sql")?.replace('_', " ");
            let version = version
                .parse()
                .unwrap_or_else(|_| panic!("{name}: the version before '_' must be a number"));
            Some((version, description, path))
        })
        .collect();
    found.sort_by_key(|(version, _, _)| *version);
    found
}

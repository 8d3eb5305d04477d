//! Writes every message's JSON Schema to `{dir}/{name}.schema.json`.
//!
//! Usage: `export-schemas [DIR]`; DIR defaults to `docs/reference/schema` under the workspace root.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(bl_proto::schema::SCHEMA_DIR)
        });
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("export-schemas: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for (name, schema) in bl_proto::schema::all() {
        let path = dir.join(format!("{name}.schema.json"));
        if let Err(e) = std::fs::write(&path, bl_proto::schema::render(&schema)) {
            eprintln!("export-schemas: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("wrote {}", path.display());
    }
    ExitCode::SUCCESS
}

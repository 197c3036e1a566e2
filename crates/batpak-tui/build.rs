//! Wraps each exported preset snippet in `tests/snippets/*.rs` in a function returning the
//! config, so a test can compile and run them (a bare `include!` of statements does not
//! compile).

use std::fmt::Write;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=tests/snippets");
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("snippets.rs");
    let mut names: Vec<PathBuf> = std::fs::read_dir("tests/snippets")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "rs"))
        .collect();
    names.sort();
    let mut code = String::new();
    for path in names {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or("bad snippet file name")?;
        let body = std::fs::read_to_string(&path)?;
        writeln!(code, "/// The exported snippet of the `{name}` preset.")?;
        writeln!(code, "#[allow(unused_mut, clippy::let_and_return)]\npub fn snippet_{name}() -> batpak::StoreConfig {{\n    #[allow(unused_imports)]\n    use batpak::prelude::*;")?;
        for line in body.lines() {
            writeln!(code, "    {line}")?;
        }
        writeln!(code, "    config\n}}")?;
    }
    std::fs::write(out, code)?;
    Ok(())
}

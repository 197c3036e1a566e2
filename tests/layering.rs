//! The engine's low layers stay leaves: the modules every other one builds on (names on
//! disk, the codec, errors, events, the config, the file-system seam, the process's I/O
//! counters) never import a module above them, read straight from the `crate::` paths in
//! `src/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The low layers, each with what it may import (among the crate's top-level modules).
const LOW: &[(&str, &[&str])] = &[
    ("layout", &[]),
    ("codec", &[]),
    ("process", &[]),
    ("error", &[]),
    ("event", &["codec", "error"]),
    ("config", &["error"]),
    ("fs", &["config", "layout", "process"]),
];

/// The top-level module a file of `src/` belongs to (`src/fs/sim/ops.rs` → `fs`).
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    Some(first.trim_end_matches(".rs").to_string())
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Res<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The top-level modules `text` names through `crate::`.
fn imports(text: &str) -> BTreeSet<String> {
    text.match_indices("crate::")
        .filter_map(|(at, m)| {
            let rest = &text[at + m.len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // A lower-case name is a module; `crate::Store` and the like are re-exports of lib.rs.
            name.starts_with(|c: char| c.is_ascii_lowercase())
                .then_some(name)
        })
        .collect()
}

#[test]
fn no_low_layer_imports_a_module_above_it() -> Res<()> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files)?;
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let text = std::fs::read_to_string(file)?;
        let entry = edges.entry(module.clone()).or_default();
        entry.extend(imports(&text).into_iter().filter(|m| *m != module));
    }
    let mut wrong = Vec::new();
    for (low, allowed) in LOW {
        let found = edges.get(*low).ok_or(format!("no module {low} in src/"))?;
        for m in found {
            if !allowed.contains(&m.as_str()) {
                wrong.push(format!("{low} imports {m}"));
            }
        }
    }
    assert!(wrong.is_empty(), "back-edges: {wrong:?}");
    Ok(())
}

#[test]
fn the_import_reader_sees_modules_and_not_re_exports() {
    let found = imports("use crate::store::Store;\nlet x = crate::Store::open;\ncrate::fs::x");
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        vec!["fs".to_string(), "store".to_string()]
    );
}

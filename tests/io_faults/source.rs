//! Which I/O call sites the engine's source has, read from the files themselves: every
//! call of a file-system method on a file-system or file receiver in `src/` (less the file
//! layer itself and the workbench binary). The sweep must reach each one, or the line is
//! named here with the reason it cannot be.

use std::collections::BTreeSet;
use std::path::Path;

/// File-system and file methods.
const METHODS: [&str; 17] = [
    "create_dir_all",
    "list_dir",
    "open",
    "rename",
    "remove_file",
    "sync_dir",
    "hard_link",
    "map",
    "links_in",
    "try_lock",
    "read_at",
    "read_full_at",
    "write_at",
    "write_all_at",
    "sync",
    "set_len",
    "size",
];

/// Names the engine gives a file system or an open file.
const RECEIVERS: [&str; 10] = [
    "fs",
    "file",
    "f",
    "out",
    "dst",
    "src",
    "a.file",
    "self.fs",
    "ctx.fs",
    "self.shared.fs",
];

/// Lines the sweep cannot reach, by file and a piece of the line, with the reason.
pub const UNREACHABLE: [(&str, &str, &str); 6] = [
    (
        "src/store/segment.rs",
        "let view = fs.map(&path(dir, no)).ok()?;",
        "version_of reads the segment before a numbering gap that ends in a short newest file, \
         which no sweep scenario's store has (tests/trust/stray.rs reaches it on real files); \
         a failed read counts as not version 1, so the stray is refused",
    ),
    (
        "src/store/segment.rs",
        "let view = fs.map(&p).map_err(|source| OpenError::Io {",
        "check_after_gaps reads a header only where the segment numbering has a gap, which no \
         sweep scenario's store has (tests/trust/stray.rs reaches it on real files)",
    ),
    (
        "src/store/reader.rs",
        "file.read_full_at(buf, off)",
        "inside read_exact_at, which tracks its caller: its calls count at the callers' lines",
    ),
    (
        "src/store/writer/io.rs",
        "let _ = a.file.write_all_at(&self.buf[..half]",
        "the test-only writer panic injected by Store::inject_writer_panic",
    ),
    (
        "src/store/compact/commit.rs",
        "fs.remove_file(&path)",
        "a staged file left by an earlier compaction whose cleanup failed (each open removes them)",
    ),
    (
        "src/projection/lmdb.rs",
        "file.set_len(map_size)",
        "LMDB's own data file, outside the file-system seam: the cache's fault hook fails it",
    ),
];

/// `true` when `line` calls a file-system method on a file-system receiver.
fn calls_io(line: &str) -> bool {
    METHODS.iter().any(|m| {
        let call = format!(".{m}(");
        line.match_indices(&call).any(|(at, _)| {
            let before = line[..at].trim_end();
            let before = before.strip_suffix('\n').unwrap_or(before);
            RECEIVERS.iter().any(|r| {
                before.ends_with(r)
                    && before[..before.len() - r.len()]
                        .chars()
                        .last()
                        .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'))
            })
        })
    })
}

/// (file, line, text) of every I/O call site in the engine's source.
pub fn sites() -> std::io::Result<Vec<(String, u32, String)>> {
    let mut out = Vec::new();
    let mut dirs = vec![Path::new("src").to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let name = path.to_string_lossy().into_owned();
            if name == "src/fs" || name == "src/bin" {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if !name.ends_with(".rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path)?;
            for (i, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") || code.contains("std::fs::") {
                    continue;
                }
                if calls_io(line) {
                    out.push((name.clone(), i as u32 + 1, code.to_string()));
                }
            }
        }
    }
    Ok(out)
}

/// Sites of the source neither reached by the sweep (`reached`: file, line) nor named in
/// [`UNREACHABLE`]; and how many were named.
pub fn unreached(
    reached: &BTreeSet<(String, u32)>,
) -> std::io::Result<(Vec<String>, usize, usize)> {
    let all = sites()?;
    let mut missing = Vec::new();
    let mut named = 0;
    for (file, line, code) in &all {
        if reached.contains(&(file.clone(), *line)) {
            continue;
        }
        if UNREACHABLE
            .iter()
            .any(|(f, piece, _)| f == file && code.contains(piece))
        {
            named += 1;
            continue;
        }
        missing.push(format!("{file}:{line}: {code}"));
    }
    Ok((missing, named, all.len()))
}

//! Preset discovery and export: the presets a user can switch to, and writing the tuned
//! configuration as a Rust snippet and a preset file (keeping what was there as `*.bak`),
//! offered to the local clipboard through OSC 52.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use batpak_tui::preset::{rust_snippet, toml_text, Preset, BUILTIN};

/// A preset the user can switch to: a built-in name or a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresetSource {
    pub label: String,
    /// What `Preset::load` takes.
    pub value: String,
}

/// The built-ins, then `*.toml` in `./presets/` and in `extra`, each list sorted.
pub fn presets(extra: Option<&Path>) -> Vec<PresetSource> {
    let mut out: Vec<PresetSource> = BUILTIN
        .iter()
        .map(|(n, _)| PresetSource {
            label: format!("{n} (built-in)"),
            value: n.to_string(),
        })
        .collect();
    for dir in [Some(Path::new("presets")), extra].into_iter().flatten() {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
            .collect();
        files.sort();
        out.extend(files.into_iter().map(|p| {
            // A path with a `/`, so `Preset::load` reads it as a file.
            let value = if p.is_absolute() {
                p.display().to_string()
            } else {
                format!("./{}", p.display())
            };
            PresetSource {
                label: value.clone(),
                value,
            }
        }));
    }
    out
}

/// Where an export went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub snippet: String,
    pub rust_file: PathBuf,
    pub toml_file: PathBuf,
    /// Files that existed and were kept as `*.bak`.
    pub backups: Vec<PathBuf>,
}

/// Writes `batpak-config.rs` and `batpak-preset.toml` into `into` for `preset` with the
/// data directory `dir`.
pub fn export(preset: &Preset, dir: &Path, into: &Path) -> Result<Exported, String> {
    let snippet = rust_snippet(&preset.store_config(dir));
    let toml = toml_text(preset).map_err(|e| format!("cannot write the preset as TOML: {e}"))?;
    let rust_file = into.join("batpak-config.rs");
    let toml_file = into.join("batpak-preset.toml");
    let mut backups = Vec::new();
    for (path, text) in [(&rust_file, &snippet), (&toml_file, &toml)] {
        if path.exists() {
            let mut bak = path.clone().into_os_string();
            bak.push(".bak");
            std::fs::rename(path, &bak)
                .map_err(|e| format!("cannot keep {} as .bak: {e}", path.display()))?;
            backups.push(PathBuf::from(bak));
        }
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(Exported {
        snippet,
        rust_file,
        toml_file,
        backups,
    })
}

/// Offers `text` to the terminal's clipboard (OSC 52; terminals that do not allow it
/// ignore the sequence, tmux passes it on with `set-clipboard on`).
pub fn offer_to_clipboard(out: &mut impl Write, text: &str) -> std::io::Result<()> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    write!(out, "\x1b]52;c;{encoded}\x07")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_writes_both_files_and_keeps_the_old_ones_as_bak() -> Result<(), String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut p = Preset::default();
        p.store.fd_budget = 8;
        let first = export(&p, Path::new("./data"), dir.path())?;
        assert!(first.backups.is_empty());
        assert!(
            first.snippet.contains("config.fd_budget = 8;"),
            "{}",
            first.snippet
        );
        let second = export(&p, Path::new("./data"), dir.path())?;
        assert_eq!(second.backups.len(), 2);
        let bak = std::fs::read_to_string(dir.path().join("batpak-config.rs.bak"))
            .map_err(|e| e.to_string())?;
        assert_eq!(bak, first.snippet);
        let toml = std::fs::read_to_string(&second.toml_file).map_err(|e| e.to_string())?;
        let back = Preset::parse(&toml, "exported").map_err(|e| e.to_string())?;
        assert_eq!(back, p, "the exported preset reads back as the tuned one");
        Ok(())
    }

    #[test]
    fn the_clipboard_offer_is_one_osc_52_sequence() -> std::io::Result<()> {
        let mut out = Vec::new();
        offer_to_clipboard(&mut out, "hi")?;
        assert_eq!(out, b"\x1b]52;c;aGk=\x07");
        Ok(())
    }
}

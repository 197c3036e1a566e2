//! Preset errors: each names the file, the line, the field and, for an unknown field, the
//! nearest valid name.

/// Why a preset could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PresetError {
    /// A `--preset` name that is not a built-in.
    #[error("unknown preset `{name}`; built-in presets: {}", known.join(", "))]
    UnknownBuiltin {
        /// The name given.
        name: String,
        /// The built-in names.
        known: Vec<String>,
    },
    /// The file could not be read.
    #[error("cannot read preset {file}: {reason}")]
    Read {
        /// The file.
        file: String,
        /// The OS error.
        reason: String,
    },
    /// The TOML is malformed or a value is wrong.
    #[error("{file}:{line}: {}{message}{}", field.as_ref().map(|f| format!("field `{f}`: ")).unwrap_or_default(), suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    Invalid {
        /// The file (or `builtin:NAME`).
        file: String,
        /// 1-based line.
        line: usize,
        /// The field, when known.
        field: Option<String>,
        /// What is wrong.
        message: String,
        /// The nearest valid field name, for an unknown field.
        suggestion: Option<String>,
    },
    /// A `--set` that does not apply.
    #[error("--set {set}: {reason}")]
    Set {
        /// The setting as given.
        set: String,
        /// What is wrong.
        reason: String,
    },
}

impl PresetError {
    pub(crate) fn from_toml(e: &toml::de::Error, text: &str, file: &str) -> Self {
        let offset = e.span().map_or(0, |s| s.start);
        let line = text[..offset.min(text.len())].matches('\n').count() + 1;
        let message = e.message().trim().to_string();
        let unknown = unknown_field(&message);
        let field = unknown.clone().or_else(|| key_on_line(text, line));
        let suggestion = unknown.and_then(|u| nearest(&u, &expected_names(&message)));
        Self::Invalid {
            file: clip(file),
            line,
            field: field.as_deref().map(clip),
            message: clip(&message),
            suggestion,
        }
    }

    /// A `[workload]` value that parsed but cannot run, at the line of its key (the
    /// `[workload]` header, or line 1, when the key is not found).
    pub(crate) fn from_spec(e: &super::SpecError, text: &str, file: &str) -> Self {
        let key = e.field.split(['[', '.']).next().unwrap_or_default();
        let mut in_workload = false;
        let mut line = None;
        for (n, l) in text.lines().enumerate() {
            let t = l.trim();
            if t.starts_with('[') {
                in_workload = t.starts_with("[workload") || t.starts_with("[[workload");
                if in_workload && line.is_none() {
                    line = Some(n + 1);
                }
            } else if in_workload && t.split('=').next().map(str::trim) == Some(key) {
                line = Some(n + 1);
            }
        }
        Self::Invalid {
            file: clip(file),
            line: line.unwrap_or(1),
            field: Some(clip(&format!("workload.{}", e.field))),
            message: clip(&e.message),
            suggestion: None,
        }
    }

    pub(crate) fn from_set(e: &toml::de::Error, set: &str) -> Self {
        let message = e.message().trim().to_string();
        let suggestion =
            unknown_field(&message).and_then(|u| nearest(&u, &expected_names(&message)));
        let hint = suggestion
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        Self::Set {
            set: clip(set),
            reason: format!("{}{hint}", clip(&message)),
        }
    }
}

/// Longest piece of preset text an error repeats.
const CLIP: usize = 400;

/// `s`, cut to [`CLIP`] characters: a hostile preset cannot make an error message huge.
fn clip(s: &str) -> String {
    match s.char_indices().nth(CLIP) {
        Some((at, _)) => format!("{}... ({} bytes)", &s[..at], s.len()),
        None => s.to_string(),
    }
}

/// Applies `a.b=value` to a TOML table; a bare `name=value` goes to `[store]`.
pub(crate) fn apply_set(table: &mut toml::Table, set: &str) -> Result<(), PresetError> {
    let bad = |reason: &str| PresetError::Set {
        set: set.to_string(),
        reason: reason.to_string(),
    };
    let (path, raw) = set
        .split_once('=')
        .ok_or_else(|| bad("expected field=value"))?;
    let mut parts: Vec<&str> = path.trim().split('.').collect();
    if parts.len() == 1 {
        parts.insert(0, "store");
    }
    let value = parse_value(raw.trim());
    let (last, tables) = parts.split_last().ok_or_else(|| bad("empty field name"))?;
    let mut t = table;
    for p in tables {
        let entry = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = entry
            .as_table_mut()
            .ok_or_else(|| bad(&format!("`{p}` is not a table")))?;
    }
    t.insert(last.to_string(), value);
    Ok(())
}

/// A TOML value if the text is one (`8`, `true`, `"x"`, `[1, 2]`), else a string.
fn parse_value(raw: &str) -> toml::Value {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
}

fn unknown_field(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    Some(rest.split('`').next()?.to_string())
}

fn expected_names(message: &str) -> Vec<String> {
    let Some(list) = message.split("expected").nth(1) else {
        return Vec::new();
    };
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

fn key_on_line(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let key = l.split('=').next()?.trim();
    (!key.is_empty() && !key.starts_with('[') && key.len() < l.trim().len())
        .then(|| key.to_string())
}

/// The candidate closest to `name` by edit distance, if reasonably close.
fn nearest(name: &str, candidates: &[String]) -> Option<String> {
    candidates
        .iter()
        .map(|c| (edit_distance(name, c), c))
        .filter(|(d, c)| *d <= (c.len() / 2).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.clone())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_field_name_is_suggested() {
        let names: Vec<String> = ["fd_budget", "sync_mode", "segment_max_bytes"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(nearest("fd_budgett", &names).as_deref(), Some("fd_budget"));
        assert_eq!(
            nearest("segment_max_byte", &names).as_deref(),
            Some("segment_max_bytes")
        );
        assert_eq!(nearest("completely_else", &names), None);
    }
}

//! The config pane's state: the preset loaded, the values being edited, and how each
//! field is shown, stepped and set. Values go through the preset's `--set` parser, so the
//! pane accepts exactly what the command line accepts (`16 MiB`, `SyncData`) and refuses
//! with the same messages.

use batpak::store::Applies;
use batpak::SyncMode;
use batpak_tui::preset::{Preset, Size, StoreSection};

/// How a field's value reads and how `+` / `-` change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A count (`+` doubles, `-` halves, at least 1).
    Count,
    /// Bytes shown in binary units (`16 MiB`); stepped like a count.
    Size,
    /// The sync mode (`+` / `-` toggle it).
    Mode,
}

/// One editable row.
pub struct Field {
    /// The `--set` path.
    pub path: &'static str,
    pub unit: &'static str,
    pub applies: Applies,
    kind: Kind,
    /// The value (`None`: not set, the platform default).
    number: fn(&StoreSection) -> Option<u64>,
}

const fn field(
    path: &'static str,
    unit: &'static str,
    applies: Applies,
    kind: Kind,
    number: fn(&StoreSection) -> Option<u64>,
) -> Field {
    Field {
        path,
        unit,
        applies,
        kind,
        number,
    }
}

fn ms(d: std::time::Duration) -> Option<u64> {
    Some(d.as_millis() as u64)
}

use Applies::{Live, NewSubscribers, NextRoll, Reopen};
use Kind::{Count, Mode, Size as Bytes};

/// Every `[store]` field a preset can hold, in `StoreConfig` order.
pub const FIELDS: [Field; 14] = [
    field("segment_max_bytes", "bytes", NextRoll, Bytes, |s| {
        Some(s.segment_max_bytes.0)
    }),
    field("sync_every_n_events", "events", Live, Count, |s| {
        Some(s.sync_every_n_events.into())
    }),
    field("fd_budget", "files", Live, Count, |s| {
        Some(s.fd_budget.into())
    }),
    field("writer_channel_capacity", "commands", Reopen, Count, |s| {
        Some(s.writer_channel_capacity.into())
    }),
    field("broadcast_capacity", "events", NewSubscribers, Count, |s| {
        Some(s.broadcast_capacity.into())
    }),
    field("cache_map_size_bytes", "bytes", Reopen, Bytes, |s| {
        Some(s.cache_map_size_bytes.0)
    }),
    field(
        "restart_policy.max_restarts",
        "restarts",
        Live,
        Count,
        |s| Some(s.restart_policy.max_restarts.into()),
    ),
    field("restart_policy.window_ms", "ms", Live, Count, |s| {
        ms(s.restart_policy.window)
    }),
    field("restart_policy.backoff_ms", "ms", Live, Count, |s| {
        ms(s.restart_policy.backoff)
    }),
    field("restart_policy.max_backoff_ms", "ms", Live, Count, |s| {
        ms(s.restart_policy.max_backoff)
    }),
    field("shutdown_drain_limit", "commands", Live, Count, |s| {
        Some(s.shutdown_drain_limit.into())
    }),
    field("writer_stack_size", "bytes", Reopen, Bytes, |s| {
        s.writer_stack_size.map(|z| z.0)
    }),
    field("sync_mode", "", Live, Mode, |_| None),
    field("idempotency_window", "keys", Reopen, Count, |s| {
        Some(s.idempotency_window.into())
    }),
];

/// The stack size `+` / `-` start from when none is set (Rust's default for new threads).
const DEFAULT_STACK: u64 = 2 << 20;

impl Field {
    /// The value in `s`, as the pane shows it.
    pub fn show(&self, s: &StoreSection) -> String {
        match (self.kind, (self.number)(s)) {
            (Mode, _) => format!("{:?}", s.sync_mode),
            (_, None) => "platform default".into(),
            (Bytes, Some(n)) => Size(n).binary(),
            (Count, Some(n)) => n.to_string(),
        }
    }

    /// The value in `s` with its unit, as the table shows it: `64 files`, `16.0 MiB`.
    pub fn shown(&self, s: &StoreSection) -> String {
        let v = self.show(s);
        match self.unit {
            "" | "bytes" => v,
            _ if v.parse::<u64>().is_err() => v,
            unit => format!("{v} {unit}"),
        }
    }

    /// The `--set` text that steps the value up (`up`) or down.
    fn stepped(&self, s: &StoreSection, up: bool) -> String {
        let v = match self.kind {
            Mode => match s.sync_mode {
                SyncMode::SyncAll => "SyncData".to_string(),
                SyncMode::SyncData => "SyncAll".to_string(),
            },
            Count | Bytes => {
                let n = (self.number)(s).unwrap_or(DEFAULT_STACK);
                let next = if up {
                    n.saturating_mul(2)
                } else {
                    (n / 2).max(1)
                };
                next.to_string()
            }
        };
        format!("{}={v}", self.path)
    }
}

/// A field changed from the loaded preset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub path: &'static str,
    /// The edited value, as the pane shows it.
    pub value: String,
    /// The value is in force in the running store.
    pub applied: bool,
}

/// `2 edits (fd_budget = 128, sync_mode = SyncData; 1 applied)`.
pub fn describe(edits: &[Edit]) -> String {
    let list: Vec<String> = edits
        .iter()
        .map(|e| format!("{} = {}", e.path, e.value))
        .collect();
    let applied = edits.iter().filter(|e| e.applied).count();
    format!(
        "{} edit{} ({}; {applied} applied)",
        edits.len(),
        if edits.len() == 1 { "" } else { "s" },
        list.join(", ")
    )
}

/// What the user is editing.
#[derive(Debug, Clone)]
pub struct ConfigState {
    /// The preset as loaded (the diff is against it).
    pub base: Preset,
    pub base_name: String,
    /// The values being edited.
    pub edited: Preset,
    /// The values in force in the store.
    pub applied: Preset,
    pub selected: usize,
    /// The text being typed (Enter on a field), if any.
    pub input: Option<String>,
    /// The last outcome (applied, refused, exported), shown under the table.
    pub message: Option<String>,
}

impl ConfigState {
    pub fn new(name: &str, preset: Preset) -> Self {
        Self {
            base: preset.clone(),
            base_name: name.to_string(),
            edited: preset.clone(),
            applied: preset,
            selected: 0,
            input: None,
            message: None,
        }
    }

    pub fn field(&self) -> &'static Field {
        &FIELDS[self.selected.min(FIELDS.len() - 1)]
    }

    /// Applies `path=value` to the edited values; a refusal becomes the message.
    pub fn set(&mut self, set: &str) {
        match self.edited.with_sets(&[set.to_string()]) {
            Ok(p) => {
                self.edited = p;
                self.message = None;
            }
            Err(e) => self.message = Some(format!("refused: {e}")),
        }
    }

    /// `+` / `-` on the selected field.
    pub fn step(&mut self, up: bool) {
        let set = self.field().stepped(&self.edited.store, up);
        self.set(&set);
    }

    /// Starts typing a new value for the selected field, prefilled with the current one.
    pub fn begin_input(&mut self) {
        let current = self.field().show(&self.edited.store);
        self.input = Some(if current == "platform default" {
            String::new()
        } else {
            current
        });
    }

    /// Sets the selected field from typed text (a number as is, anything else quoted).
    pub fn set_typed(&mut self, text: &str) {
        let quoted = if text.trim().parse::<f64>().is_ok() {
            text.trim().to_string()
        } else {
            format!("\"{}\"", text.trim().replace('"', ""))
        };
        let set = format!("{}={quoted}", self.field().path);
        self.set(&set);
    }

    /// Fields changed from the loaded preset, edited or already applied: what switching
    /// to another preset drops.
    pub fn edits(&self) -> Vec<Edit> {
        FIELDS
            .iter()
            .filter_map(|f| {
                let (base, edited, applied) = (
                    f.show(&self.base.store),
                    f.show(&self.edited.store),
                    f.show(&self.applied.store),
                );
                (edited != base || applied != base).then(|| Edit {
                    path: f.path,
                    value: edited.clone(),
                    applied: applied == edited,
                })
            })
            .collect()
    }

    /// Fields whose edited value differs from the one in force, and those of them that
    /// need a reopen.
    pub fn pending(&self) -> (Vec<&'static str>, Vec<&'static str>) {
        let differs: Vec<&'static str> = FIELDS
            .iter()
            .filter(|f| f.show(&self.edited.store) != f.show(&self.applied.store))
            .map(|f| f.path)
            .collect();
        let reopen = FIELDS
            .iter()
            .filter(|f| f.applies == Applies::Reopen && differs.contains(&f.path))
            .map(|f| f.path)
            .collect();
        (differs, reopen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ConfigState {
        ConfigState::new("default", Preset::default())
    }

    #[test]
    fn plus_and_minus_double_and_halve_and_sync_mode_toggles() {
        let mut c = state();
        c.selected = 2;
        let before = c.edited.store.fd_budget;
        c.step(true);
        assert_eq!(c.edited.store.fd_budget, before * 2);
        c.step(false);
        c.step(false);
        assert_eq!(c.edited.store.fd_budget, before / 2);
        c.selected = FIELDS
            .iter()
            .position(|f| f.path == "sync_mode")
            .unwrap_or(usize::MAX);
        c.step(true);
        assert_eq!(c.edited.store.sync_mode, SyncMode::SyncData);
    }

    #[test]
    fn typed_sizes_are_read_like_the_command_line_and_bad_values_are_refused_by_name() {
        let mut c = state();
        c.selected = 0;
        c.begin_input();
        c.set_typed("16 MiB");
        assert_eq!(c.edited.store.segment_max_bytes.0, 16 << 20);
        assert_eq!(c.pending().0, vec!["segment_max_bytes"]);
        c.selected = 3;
        c.set_typed("lots");
        let msg = c.message.clone().unwrap_or_default();
        assert!(msg.contains("writer_channel_capacity"), "{msg}");
        assert_eq!(
            c.pending().1,
            Vec::<&str>::new(),
            "the refused value was not taken"
        );
        c.set_typed("64");
        assert_eq!(c.pending().1, vec!["writer_channel_capacity"]);
    }

    #[test]
    fn edits_name_each_changed_field_its_value_and_how_many_are_in_force() {
        let mut c = state();
        assert!(c.edits().is_empty(), "a fresh preset has no edits");
        c.set("fd_budget=128");
        c.applied = c.edited.clone();
        c.set("sync_mode=\"SyncData\"");
        let edits = c.edits();
        assert_eq!(
            describe(&edits),
            "2 edits (fd_budget = 128, sync_mode = SyncData; 1 applied)"
        );
        c.set("fd_budget=64");
        c.set("sync_mode=\"SyncAll\"");
        assert_eq!(
            describe(&c.edits()),
            "1 edit (fd_budget = 64; 0 applied)",
            "an applied edit set back is still dropped by a switch: the store runs 128"
        );
    }
}

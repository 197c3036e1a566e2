//! The config pane's state: the preset loaded, the values being edited, and how each
//! field is shown, stepped and set. Values go through the preset's `--set` parser, so the
//! pane accepts exactly what the command line accepts (`16 MiB`, `SyncData`) and refuses
//! with the same messages.

use batpak::preset::{Preset, Size, StoreSection};
use batpak::store::Applies;
use batpak::SyncMode;

/// How `+` / `-` change a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Doubles / halves (at least 1).
    Double,
    /// Goes to the other `SyncMode`.
    Mode,
}

/// One editable row.
pub struct Field {
    /// The `--set` path.
    pub path: &'static str,
    pub unit: &'static str,
    pub applies: Applies,
    value: fn(&StoreSection) -> String,
    number: fn(&StoreSection) -> u64,
    step: Step,
}

fn ms(d: std::time::Duration) -> u64 {
    d.as_millis() as u64
}

/// Every `[store]` field a preset can hold, in `StoreConfig` order.
pub const FIELDS: [Field; 13] = [
    Field {
        path: "segment_max_bytes",
        unit: "bytes",
        applies: Applies::NextRoll,
        value: |s| s.segment_max_bytes.binary(),
        number: |s| s.segment_max_bytes.0,
        step: Step::Double,
    },
    Field {
        path: "sync_every_n_events",
        unit: "events",
        applies: Applies::Live,
        value: |s| s.sync_every_n_events.to_string(),
        number: |s| s.sync_every_n_events.into(),
        step: Step::Double,
    },
    Field {
        path: "fd_budget",
        unit: "files",
        applies: Applies::Live,
        value: |s| s.fd_budget.to_string(),
        number: |s| s.fd_budget.into(),
        step: Step::Double,
    },
    Field {
        path: "writer_channel_capacity",
        unit: "commands",
        applies: Applies::Reopen,
        value: |s| s.writer_channel_capacity.to_string(),
        number: |s| s.writer_channel_capacity.into(),
        step: Step::Double,
    },
    Field {
        path: "broadcast_capacity",
        unit: "events",
        applies: Applies::NewSubscribers,
        value: |s| s.broadcast_capacity.to_string(),
        number: |s| s.broadcast_capacity.into(),
        step: Step::Double,
    },
    Field {
        path: "cache_map_size_bytes",
        unit: "bytes",
        applies: Applies::Reopen,
        value: |s| s.cache_map_size_bytes.binary(),
        number: |s| s.cache_map_size_bytes.0,
        step: Step::Double,
    },
    Field {
        path: "restart_policy.max_restarts",
        unit: "restarts",
        applies: Applies::Live,
        value: |s| s.restart_policy.max_restarts.to_string(),
        number: |s| s.restart_policy.max_restarts.into(),
        step: Step::Double,
    },
    Field {
        path: "restart_policy.window_ms",
        unit: "ms",
        applies: Applies::Live,
        value: |s| ms(s.restart_policy.window).to_string(),
        number: |s| ms(s.restart_policy.window),
        step: Step::Double,
    },
    Field {
        path: "restart_policy.backoff_ms",
        unit: "ms",
        applies: Applies::Live,
        value: |s| ms(s.restart_policy.backoff).to_string(),
        number: |s| ms(s.restart_policy.backoff),
        step: Step::Double,
    },
    Field {
        path: "restart_policy.max_backoff_ms",
        unit: "ms",
        applies: Applies::Live,
        value: |s| ms(s.restart_policy.max_backoff).to_string(),
        number: |s| ms(s.restart_policy.max_backoff),
        step: Step::Double,
    },
    Field {
        path: "shutdown_drain_limit",
        unit: "commands",
        applies: Applies::Live,
        value: |s| s.shutdown_drain_limit.to_string(),
        number: |s| s.shutdown_drain_limit.into(),
        step: Step::Double,
    },
    Field {
        path: "writer_stack_size",
        unit: "bytes",
        applies: Applies::Reopen,
        value: |s| {
            s.writer_stack_size
                .map_or("platform default".into(), Size::binary)
        },
        number: |s| s.writer_stack_size.map_or(2 << 20, |z| z.0),
        step: Step::Double,
    },
    Field {
        path: "sync_mode",
        unit: "",
        applies: Applies::Live,
        value: |s| format!("{:?}", s.sync_mode),
        number: |_| 0,
        step: Step::Mode,
    },
];

impl Field {
    /// The value in `s`, as the pane shows it.
    pub fn show(&self, s: &StoreSection) -> String {
        (self.value)(s)
    }

    /// The `--set` text that steps the value up (`up`) or down.
    fn stepped(&self, s: &StoreSection, up: bool) -> String {
        let v = match self.step {
            Step::Mode => match s.sync_mode {
                SyncMode::SyncAll => "SyncData".to_string(),
                SyncMode::SyncData => "SyncAll".to_string(),
            },
            Step::Double => {
                let n = (self.number)(s);
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

    /// Enter while typing: sets the field from the text.
    pub fn commit_input(&mut self) {
        if let Some(text) = self.input.take() {
            let quoted = if text.trim().parse::<f64>().is_ok() {
                text.trim().to_string()
            } else {
                format!("\"{}\"", text.trim().replace('"', ""))
            };
            let set = format!("{}={quoted}", self.field().path);
            self.set(&set);
        }
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
        c.selected = FIELDS.len() - 1;
        c.step(true);
        assert_eq!(c.edited.store.sync_mode, SyncMode::SyncData);
    }

    #[test]
    fn typed_sizes_are_read_like_the_command_line_and_bad_values_are_refused_by_name() {
        let mut c = state();
        c.selected = 0;
        c.begin_input();
        c.input = Some("16 MiB".into());
        c.commit_input();
        assert_eq!(c.edited.store.segment_max_bytes.0, 16 << 20);
        assert_eq!(c.pending().0, vec!["segment_max_bytes"]);
        c.selected = 3;
        c.input = Some("lots".into());
        c.commit_input();
        let msg = c.message.clone().unwrap_or_default();
        assert!(msg.contains("writer_channel_capacity"), "{msg}");
        assert_eq!(
            c.pending().1,
            Vec::<&str>::new(),
            "the refused value was not taken"
        );
        c.input = Some("64".into());
        c.commit_input();
        assert_eq!(c.pending().1, vec!["writer_channel_capacity"]);
    }
}

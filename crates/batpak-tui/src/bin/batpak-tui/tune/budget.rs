//! The budget `tune` keeps: `loss<=100, p99<=2ms, rss<=64MiB, fds<=16, disk<=1GiB,
//! wear<=300B`. Each item names one figure of a run and its largest allowed value.

use std::fmt;

use batpak_tui::preset::Size;
use serde::Serialize;

use super::trial::Measured;
use crate::units;

/// One limit of a budget.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "item", content = "limit", rename_all = "snake_case")]
pub enum Item {
    /// Acknowledged events a power cut may take (the configuration's bound).
    LossEvents(u64),
    /// Bytes of acknowledged events a power cut may take (the run's largest window).
    LossBytes(u64),
    /// Append latency, 99th percentile, in microseconds (the slowest repeat's).
    P99Micros(u64),
    /// Peak resident memory of the process, bytes.
    Rss(u64),
    /// Peak open file descriptors of the process.
    Fds(u64),
    /// Disk the store takes at the end of a run, bytes.
    Disk(u64),
    /// Bytes sent to storage per appended event.
    WearBytes(f64),
    /// Bytes sent to storage / bytes the log appended.
    WearTimes(f64),
}

impl Item {
    /// The figure's name as a budget writes it.
    pub fn key(self) -> &'static str {
        match self {
            Item::LossEvents(_) | Item::LossBytes(_) => "loss",
            Item::P99Micros(_) => "p99",
            Item::Rss(_) => "rss",
            Item::Fds(_) => "fds",
            Item::Disk(_) => "disk",
            Item::WearBytes(_) | Item::WearTimes(_) => "wear",
        }
    }

    /// What the item limits, in words.
    pub fn what(self) -> &'static str {
        match self {
            Item::LossEvents(_) => "a power cut's loss",
            Item::LossBytes(_) => "a power cut's loss in bytes",
            Item::P99Micros(_) => "append p99",
            Item::Rss(_) => "peak memory",
            Item::Fds(_) => "open descriptors",
            Item::Disk(_) => "disk used",
            Item::WearBytes(_) => "storage writes per event",
            Item::WearTimes(_) => "write amplification",
        }
    }

    /// The limit.
    pub fn limit(self) -> f64 {
        match self {
            Item::LossEvents(n)
            | Item::LossBytes(n)
            | Item::P99Micros(n)
            | Item::Rss(n)
            | Item::Fds(n)
            | Item::Disk(n) => n as f64,
            Item::WearBytes(v) | Item::WearTimes(v) => v,
        }
    }

    /// The measured figure the item is held to: the worst of the repeats (`None`: the
    /// runs did not measure it).
    pub fn value(self, m: &Measured) -> Option<f64> {
        match self {
            Item::LossEvents(_) => Some(m.worst(|r| {
                let w = &r.loss_window;
                w.power_cut_bound_events.max(w.power_cut_events.max) as f64
            })),
            Item::LossBytes(_) => Some(m.worst(|r| r.loss_window.power_cut_bytes.max as f64)),
            Item::P99Micros(_) => Some(m.worst(|r| r.append_latency_us.p99 as f64)),
            Item::Rss(_) => Some(m.worst(|r| r.rss_peak_bytes as f64)),
            Item::Fds(_) => m.worst_of(|r| r.open_fds_peak.map(|n| n as f64)),
            Item::Disk(_) => Some(m.worst(|r| r.disk_bytes as f64)),
            Item::WearBytes(_) => Some(m.worst(|r| r.storage_bytes_per_event)),
            Item::WearTimes(_) => m.worst_of(|r| r.write_amplification),
        }
    }

    /// A value of this item's figure as text with its unit.
    pub fn text(self, v: f64) -> String {
        match self {
            Item::LossEvents(_) => format!("{} events", units::count(v.round() as u64)),
            Item::LossBytes(_) | Item::Rss(_) | Item::Disk(_) => units::bytes(v.round() as u64),
            Item::P99Micros(_) => units::micros(v.round() as u64),
            Item::Fds(_) => units::count(v.round() as u64),
            Item::WearBytes(_) => format!("{:.0} B/event", v),
            Item::WearTimes(_) => units::times(v),
        }
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}<={}", self.key(), self.text(self.limit()))
    }
}

/// Every item of a budget, in the order written.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Budget {
    /// The limits.
    pub items: Vec<Item>,
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.items.is_empty() {
            return f.write_str("none");
        }
        let parts: Vec<String> = self.items.iter().map(Item::to_string).collect();
        f.write_str(&parts.join(", "))
    }
}

impl Budget {
    /// Parses `loss<=100, p99<=2ms, rss<=64MiB, fds<=16, disk<=1GiB, wear<=300B`. An error
    /// names the item and says what it accepts.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut items: Vec<Item> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let item = parse_item(part).map_err(|e| format!("budget item `{part}`: {e}"))?;
            if items.iter().any(|i| i.key() == item.key()) {
                return Err(format!(
                    "budget item `{part}`: `{}` is limited twice",
                    item.key()
                ));
            }
            items.push(item);
        }
        Ok(Self { items })
    }

    /// Whether every item holds on `m`.
    pub fn holds(&self, m: &Measured) -> bool {
        self.violations(m).is_empty()
    }

    /// The items `m` breaks, each with the measured value (a figure the runs did not
    /// measure breaks its item: it cannot be shown to hold).
    pub fn violations(&self, m: &Measured) -> Vec<(Item, Option<f64>)> {
        self.items
            .iter()
            .map(|&i| (i, i.value(m)))
            .filter(|(i, v)| v.is_none_or(|v| v > i.limit()))
            .collect()
    }
}

const KEYS: &str = "loss, p99, rss, fds, disk, wear";

fn parse_item(part: &str) -> Result<Item, String> {
    let Some((key, value)) = part.split_once("<=") else {
        return Err(format!("write it as NAME<=VALUE, NAME one of {KEYS}"));
    };
    let (key, value) = (key.trim(), value.trim());
    match key {
        "loss" => match value.parse::<u64>() {
            Ok(n) => Ok(Item::LossEvents(n)),
            Err(_) => Size::parse(value)
                .map(|s| Item::LossBytes(s.0))
                .map_err(|_| "a number of events (100) or a size (64KiB)".into()),
        },
        "p99" => parse_micros(value).map(Item::P99Micros),
        "rss" | "memory" => Size::parse(value).map(|s| Item::Rss(s.0)),
        "disk" => Size::parse(value).map(|s| Item::Disk(s.0)),
        "fds" => value
            .parse()
            .map(Item::Fds)
            .map_err(|_| "a whole number of descriptors".into()),
        "wear" => parse_wear(value),
        other => Err(format!("unknown item `{other}` (use {KEYS})")),
    }
}

/// `2ms`, `500us`, `500µs`, `1.5s` as microseconds.
fn parse_micros(value: &str) -> Result<u64, String> {
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let n: f64 = value[..split]
        .parse()
        .map_err(|_| "a latency like 2ms, 500us or 1s".to_string())?;
    let scale = match value[split..].trim() {
        "us" | "µs" => 1.0,
        "ms" => 1_000.0,
        "s" => 1_000_000.0,
        "" => return Err("a latency needs its unit: us, ms or s".into()),
        other => return Err(format!("unknown unit `{other}` (use us, ms, s)")),
    };
    Ok((n * scale).round() as u64)
}

/// `300B` or `300 B/event` (storage bytes per event) or `3x` (write amplification).
fn parse_wear(value: &str) -> Result<Item, String> {
    let what = "bytes sent to storage per event (300B) or write amplification (3x)";
    if let Some(x) = value.strip_suffix(['x', 'X']) {
        return x
            .trim()
            .parse()
            .map(Item::WearTimes)
            .map_err(|_| what.into());
    }
    let bytes = value.trim_end_matches("/event").trim();
    Size::parse(bytes)
        .map(|s| Item::WearBytes(s.0 as f64))
        .map_err(|_| what.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_reads_every_item_with_its_unit() -> Result<(), String> {
        let b = Budget::parse("loss<=100, p99<=2ms, rss<=64MiB, fds<=16, disk<=1GiB, wear<=300B")?;
        assert_eq!(
            b.items,
            vec![
                Item::LossEvents(100),
                Item::P99Micros(2_000),
                Item::Rss(64 << 20),
                Item::Fds(16),
                Item::Disk(1 << 30),
                Item::WearBytes(300.0),
            ]
        );
        let b = Budget::parse("loss<=64KiB,p99<=500us,wear<=3x")?;
        assert_eq!(
            b.items,
            vec![
                Item::LossBytes(64 << 10),
                Item::P99Micros(500),
                Item::WearTimes(3.0)
            ]
        );
        Ok(())
    }

    #[test]
    fn a_bad_budget_item_is_named_with_what_it_accepts() -> Result<(), String> {
        let e = Budget::parse("loss<=100, p99<=2").err().ok_or("accepted")?;
        assert!(e.contains("`p99<=2`") && e.contains("unit"), "{e}");
        let e = Budget::parse("latency<=2ms").err().ok_or("accepted")?;
        assert!(e.contains("unknown item `latency`"), "{e}");
        let e = Budget::parse("fds=16").err().ok_or("accepted")?;
        assert!(e.contains("NAME<=VALUE"), "{e}");
        let e = Budget::parse("fds<=16, fds<=8").err().ok_or("accepted")?;
        assert!(e.contains("twice"), "{e}");
        Ok(())
    }
}

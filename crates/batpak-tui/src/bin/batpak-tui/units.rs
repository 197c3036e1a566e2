//! How numbers read, in the workbench and in the headless commands alike: sizes in binary
//! units, counts with thousands separators, rates and magnitudes with k/M/G, latencies in
//! µs, ms or s, shares in per cent, ratios as `6.6x`.

/// `1536` → `1.5 KiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A text progress bar of `width` cells for a fraction 0..=1.
pub fn bar(fraction: f64, width: usize) -> String {
    let filled = ((fraction.clamp(0.0, 1.0)) * width as f64) as usize;
    format!(
        "[{}{}]",
        "#".repeat(filled),
        " ".repeat(width.saturating_sub(filled))
    )
}

/// `1234567` → `1,234,567`.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A magnitude with k / M / G: `1.23M`, `45.6k`, `8343`, `3.2`.
pub fn magnitude(v: f64) -> String {
    match v {
        v if !v.is_finite() => "-".into(),
        v if v >= 1e9 => format!("{:.2}G", v / 1e9),
        v if v >= 1e6 => format!("{:.2}M", v / 1e6),
        v if v >= 1e4 => format!("{:.1}k", v / 1e3),
        v if v >= 100.0 => format!("{v:.0}"),
        v => format!("{v:.1}"),
    }
}

/// A round number as short as it reads (chart scales): `60k`, `1.5M`, `150`, `2.5`, `0`.
pub fn short(v: f64) -> String {
    let (n, suffix) = match v {
        v if v >= 1e9 => (v / 1e9, "G"),
        v if v >= 1e6 => (v / 1e6, "M"),
        v if v >= 1e3 => (v / 1e3, "k"),
        v => (v, ""),
    };
    let text = format!("{n:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{suffix}")
}

/// Per second: `12.3k/s`.
pub fn rate(v: f64) -> String {
    format!("{}/s", magnitude(v))
}

/// Per second with what is counted: `12.3k events/s`.
pub fn rate_of(v: f64, what: &str) -> String {
    format!("{} {what}/s", magnitude(v))
}

/// Microseconds as µs, ms or s.
pub fn micros(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => format!("{:.1} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

/// A duration as µs, ms or s, like a latency: `412 µs`, `3.1 ms`, `2.50 s`.
pub fn duration(d: std::time::Duration) -> String {
    micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A fraction as per cent: `0.123` → `12.3 %`.
pub fn percent(fraction: f64) -> String {
    format!("{:.1} %", fraction * 100.0)
}

/// A plain figure with one decimal: `813.7`.
pub fn decimal(v: f64) -> String {
    format!("{v:.1}")
}

/// How many times: `6.6x`, `14x`.
pub fn times(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}x")
    } else {
        format!("{v:.1}x")
    }
}

/// A span as a clock reads it: `0:52`, `4:05`, `1:02:30`.
pub fn clock(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(16 << 20), "16.0 MiB");
    }

    #[test]
    fn numbers_read_like_a_person_writes_them() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(rate(1_234_567.0), "1.23M/s");
        assert_eq!(rate(45_600.0), "45.6k/s");
        assert_eq!(rate(3.25), "3.2/s");
        assert_eq!(rate_of(8343.0, "events"), "8343 events/s");
        assert_eq!(micros(850), "850 µs");
        assert_eq!(micros(1_500), "1.5 ms");
        assert_eq!(micros(2_500_000), "2.50 s");
        assert_eq!(duration(std::time::Duration::from_micros(3_140)), "3.1 ms");
        assert_eq!(percent(0.123), "12.3 %");
        assert_eq!(times(6.61), "6.6x");
        assert_eq!(times(14.2), "14x");
    }

    #[test]
    fn chart_scales_read_without_trailing_zeros() {
        assert_eq!(short(60_000.0), "60k");
        assert_eq!(short(1_500_000.0), "1.5M");
        assert_eq!(short(150.0), "150");
        assert_eq!(short(2.5), "2.5");
        assert_eq!(short(0.0), "0");
    }

    #[test]
    fn a_progress_bar_never_overflows() {
        assert_eq!(bar(0.5, 4), "[##  ]");
        assert_eq!(bar(7.0, 4), "[####]");
    }
}

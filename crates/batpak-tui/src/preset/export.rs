//! Export: a `StoreConfig` as a Rust snippet in the tuning guide's style, and a preset as
//! TOML.

use std::fmt::Write;

use batpak::config::{RestartPolicy, StoreConfig, SyncMode};

use super::{Preset, Size};

/// `16 * 1024 * 1024` for whole binary multiples, the plain number otherwise.
fn size_expr(bytes: u64) -> String {
    for (mult, expr) in [
        (1u64 << 30, " * 1024 * 1024 * 1024"),
        (1 << 20, " * 1024 * 1024"),
        (1 << 10, " * 1024"),
    ] {
        if bytes >= mult && bytes.is_multiple_of(mult) {
            return match bytes / mult {
                1 => expr.trim_start_matches(" * ").to_string(),
                n => format!("{n}{expr}"),
            };
        }
    }
    bytes.to_string()
}

fn line(out: &mut String, field: &str, value: &str, comment: &str) {
    let stmt = format!("config.{field} = {value};");
    let _ = writeln!(out, "{stmt:<48} // {comment}");
}

fn restart_expr(p: &RestartPolicy) -> String {
    format!(
        "RestartPolicy {{ max_restarts: {}, window: std::time::Duration::from_millis({}), backoff: std::time::Duration::from_millis({}), max_backoff: std::time::Duration::from_millis({}) }}",
        p.max_restarts,
        p.window.as_millis(),
        p.backoff.as_millis(),
        p.max_backoff.as_millis()
    )
}

/// The statements that build `c`: `let mut config = StoreConfig::new("DIR");` then one
/// line per field that differs from the default, in `StoreConfig`'s field order, each with
/// a short comment in binary units. No `use`, no `fn`.
pub fn rust_snippet(c: &StoreConfig) -> String {
    let d = StoreConfig::new(&c.data_dir);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "let mut config = StoreConfig::new({:?});",
        c.data_dir.display().to_string()
    );
    if c.segment_max_bytes != d.segment_max_bytes {
        let size = Size(c.segment_max_bytes);
        line(
            &mut out,
            "segment_max_bytes",
            &size_expr(c.segment_max_bytes),
            &format!("{size} segments"),
        );
    }
    if c.sync_every_n_events != d.sync_every_n_events {
        let n = c.sync_every_n_events;
        let what = if n == 1 {
            "every append durable".to_string()
        } else {
            format!("sync at least every {n} events")
        };
        line(&mut out, "sync_every_n_events", &n.to_string(), &what);
    }
    if c.fd_budget != d.fd_budget {
        line(
            &mut out,
            "fd_budget",
            &c.fd_budget.to_string(),
            &format!("{} segment files open or mapped", c.fd_budget),
        );
    }
    if c.writer_channel_capacity != d.writer_channel_capacity {
        let n = c.writer_channel_capacity;
        line(
            &mut out,
            "writer_channel_capacity",
            &n.to_string(),
            &format!("{n} queued appends before producers block"),
        );
    }
    if c.broadcast_capacity != d.broadcast_capacity {
        let n = c.broadcast_capacity;
        line(
            &mut out,
            "broadcast_capacity",
            &n.to_string(),
            &format!("{n} events per subscriber ring"),
        );
    }
    if c.cache_map_size_bytes != d.cache_map_size_bytes {
        let size = Size(c.cache_map_size_bytes);
        line(
            &mut out,
            "cache_map_size_bytes",
            &size_expr(c.cache_map_size_bytes),
            &format!("{size} projection cache"),
        );
    }
    if c.restart_policy != d.restart_policy {
        let p = &c.restart_policy;
        let what = format!("{} writer restarts per {:?}", p.max_restarts, p.window);
        line(&mut out, "restart_policy", &restart_expr(p), &what);
    }
    if c.shutdown_drain_limit != d.shutdown_drain_limit {
        let n = c.shutdown_drain_limit;
        line(
            &mut out,
            "shutdown_drain_limit",
            &n.to_string(),
            &format!("drain up to {n} queued appends on close"),
        );
    }
    if let Some(stack) = c
        .writer_stack_size
        .filter(|s| Some(*s) != d.writer_stack_size)
    {
        let size = Size(stack as u64);
        line(
            &mut out,
            "writer_stack_size",
            &format!("Some({})", size_expr(stack as u64)),
            &format!("{size} writer stack"),
        );
    }
    if c.sync_mode != d.sync_mode {
        let (v, what) = match c.sync_mode {
            SyncMode::SyncAll => ("SyncMode::SyncAll", "fsync: data and metadata"),
            SyncMode::SyncData => ("SyncMode::SyncData", "fdatasync: skip metadata"),
        };
        line(&mut out, "sync_mode", v, what);
    }
    if c.idempotency_window != d.idempotency_window {
        let n = c.idempotency_window;
        line(
            &mut out,
            "idempotency_window",
            &n.to_string(),
            &format!("remember the last {n} idempotency keys"),
        );
    }
    if c.clock.is_some() {
        out.push_str("// clock: an injected clock is code and is not exported\n");
    }
    out
}

/// The preset as TOML (what `batpak-preset.toml` holds).
pub fn toml_text(p: &Preset) -> Result<String, toml::ser::Error> {
    let mut out = String::from(
        "# batpak preset: [store] is StoreConfig without the data directory and clock\n",
    );
    out.push_str(&toml::to_string(p)?);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_config_exports_only_the_constructor() {
        assert_eq!(
            rust_snippet(&StoreConfig::new("./data")),
            "let mut config = StoreConfig::new(\"./data\");\n"
        );
    }

    #[test]
    fn sizes_are_written_as_products_with_binary_unit_comments() {
        let mut c = StoreConfig::new("./data");
        c.segment_max_bytes = 16 * 1024 * 1024;
        let s = rust_snippet(&c);
        assert!(
            s.contains("config.segment_max_bytes = 16 * 1024 * 1024;"),
            "{s}"
        );
        assert!(s.contains("// 16 MiB segments"), "{s}");
    }
}

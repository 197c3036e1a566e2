//! Presets: the shipped ones hold the tuning guide's examples, errors name file, line,
//! field and the nearest valid name, `--set` works on every table, the round trips hold,
//! and the exported snippets compile and cannot drift.

mod common;

use batpak::prelude::*;
use batpak_tui::preset::{rust_snippet, toml_text, Preset, PresetError, StoreSection, BUILTIN};
use common::*;

mod snippets {
    include!(concat!(env!("OUT_DIR"), "/snippets.rs"));
}

#[test]
fn the_shipped_presets_hold_the_tuning_guides_examples() -> TestResult {
    let embedded = Preset::builtin("embedded")?.store_config("/data/events");
    assert_eq!(
        (
            embedded.segment_max_bytes,
            embedded.fd_budget,
            embedded.sync_every_n_events
        ),
        (16 * 1024 * 1024, 8, 10)
    );
    assert_eq!(
        (
            embedded.writer_channel_capacity,
            embedded.cache_map_size_bytes
        ),
        (256, 4 * 1024 * 1024)
    );
    let server = Preset::builtin("server")?.store_config("/var/lib/events");
    assert_eq!(
        (server.segment_max_bytes, server.sync_every_n_events),
        (1024 * 1024 * 1024, 5000)
    );
    assert_eq!(server.sync_mode, SyncMode::SyncData);
    assert_eq!(
        (
            server.fd_budget,
            server.writer_channel_capacity,
            server.broadcast_capacity
        ),
        (256, 16384, 32768)
    );
    let default = Preset::builtin("default")?.store_config("x");
    assert_eq!(
        format!("{default:?}"),
        format!("{:?}", StoreConfig::new("x"))
    );
    Ok(())
}

#[test]
fn the_files_in_presets_are_the_built_in_ones() -> TestResult {
    for (name, text) in BUILTIN {
        assert_eq!(
            std::fs::read_to_string(format!("../../presets/{name}.toml"))?,
            text
        );
    }
    Ok(())
}

#[test]
fn an_unknown_built_in_name_lists_the_built_ins() {
    let err = Preset::load("tiny", &[])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("default, embedded, server"), "{err}");
}

#[test]
fn an_unknown_field_names_file_line_field_and_the_nearest_valid_name() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[store]\nsegment_max_bytes = \"16 MiB\"\nfd_budgett = 8\n",
    )?;
    let err = Preset::load(&path.display().to_string(), &[])
        .err()
        .ok_or("loaded")?;
    assert!(
        matches!(&err, PresetError::Invalid { line: 3, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{}:3:", path.display())), "{msg}");
    assert!(
        msg.contains("fd_budgett") && msg.contains("did you mean `fd_budget`?"),
        "{msg}"
    );
    Ok(())
}

#[test]
fn a_value_of_the_wrong_type_names_the_field_and_line() -> TestResult {
    let err = Preset::parse("[workload]\nproducers = 2\nseed = \"soon\"\n", "p.toml")
        .err()
        .ok_or("parsed")?;
    let msg = err.to_string();
    assert!(
        msg.starts_with("p.toml:3:") && msg.contains("field `seed`"),
        "{msg}"
    );
    let err = Preset::parse("[store]\nsegment_max_bytes = \"16 furlongs\"\n", "p.toml")
        .err()
        .ok_or("parsed")?;
    assert!(
        err.to_string().contains("furlongs") && err.to_string().contains("p.toml:2"),
        "{err}"
    );
    Ok(())
}

#[test]
fn sizes_accept_binary_and_decimal_units() -> TestResult {
    let p = Preset::parse(
        "[store]\nsegment_max_bytes = \"16 MB\"\ncache_map_size_bytes = 2097152\n",
        "p",
    )?;
    assert_eq!(p.store.segment_max_bytes.0, 16_000_000);
    assert_eq!(p.store.cache_map_size_bytes.0, 2 << 20);
    Ok(())
}

#[test]
fn set_changes_store_fields_and_fields_of_other_tables() -> TestResult {
    let p = Preset::load(
        "embedded",
        &[
            "fd_budget=4".into(),
            "workload.producers=3".into(),
            "segment_max_bytes=\"8 MiB\"".into(),
        ],
    )?;
    assert_eq!(p.store.fd_budget, 4);
    assert_eq!(p.workload.producers, 3);
    assert_eq!(p.store.segment_max_bytes.0, 8 << 20);
    assert_eq!(
        p.store.sync_every_n_events, 10,
        "the rest of the preset stays"
    );
    let err = Preset::load("default", &["fd_budgit=4".into()])
        .err()
        .ok_or("applied")?
        .to_string();
    assert!(
        err.contains("--set fd_budgit=4") && err.contains("did you mean `fd_budget`?"),
        "{err}"
    );
    Ok(())
}

#[test]
fn a_preset_round_trips_through_toml_and_through_store_config() -> TestResult {
    for (name, _) in BUILTIN {
        let p = Preset::builtin(name)?;
        let again = Preset::parse(&toml_text(&p)?, "round-trip")?;
        assert_eq!(again, p, "{name}");
        let section = StoreSection::from_config(&p.store_config("d"));
        assert_eq!(section, p.store, "{name}");
    }
    let mut c = StoreConfig::new("d");
    c.writer_stack_size = Some(512 * 1024);
    c.restart_policy.max_restarts = 9;
    c.sync_mode = SyncMode::SyncData;
    let back = StoreSection::from_config(&c).to_config("d");
    assert_eq!(format!("{back:?}"), format!("{c:?}"));
    Ok(())
}

#[test]
fn the_shipped_snippets_match_a_fresh_export() -> TestResult {
    for (name, _) in BUILTIN {
        let fresh = rust_snippet(&Preset::builtin(name)?.store_config("./data"));
        let kept = std::fs::read_to_string(format!("tests/snippets/{name}.rs"))?;
        assert_eq!(kept, fresh, "tests/snippets/{name}.rs drifted: regenerate with `cargo run --example export_presets`");
    }
    Ok(())
}

#[test]
fn the_shipped_snippets_compile_and_build_the_preset_configs() -> TestResult {
    let built = [
        ("default", snippets::snippet_default()),
        ("embedded", snippets::snippet_embedded()),
        ("server", snippets::snippet_server()),
    ];
    for (name, config) in built {
        let expected = Preset::builtin(name)?.store_config("./data");
        assert_eq!(format!("{config:?}"), format!("{expected:?}"), "{name}");
    }
    Ok(())
}

#[test]
fn an_injected_clock_is_left_out_of_the_snippet_with_a_comment() {
    let mut c = StoreConfig::new("./data");
    c.clock = Some(std::sync::Arc::new(|| 7));
    assert!(rust_snippet(&c).contains("// clock: an injected clock is code and is not exported"));
}

#[test]
fn gates_described_in_a_preset_are_built() -> TestResult {
    let p = Preset::parse(
        "[gates]\nevaluate_all = true\nmax_payload = \"1 KiB\"\nrate_limit_per_entity = 10\nrate_window_ms = 1000\nrequires_causation = [259]\n",
        "g.toml",
    )?;
    let gates = p.gates.ok_or("no gates")?.build();
    assert_eq!(
        gates.names(),
        vec!["max_payload_size", "requires_causation", "rate_limit"]
    );
    Ok(())
}

#[test]
fn a_preset_bomb_is_refused_with_an_error_not_a_crash() {
    let deep = format!(
        "[store]\nsegment_max_bytes = {}1{}\n",
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let err = batpak_tui::preset::Preset::parse(&deep, "bomb.toml").err();
    assert!(err.is_some(), "deep nesting is refused");
    let huge = format!(
        "[store]\nsegment_max_bytes = \"{}\"\n",
        "9".repeat(5_000_000)
    );
    let err = batpak_tui::preset::Preset::parse(&huge, "huge.toml")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("huge.toml") && err.contains("segment_max_bytes"),
        "{}",
        &err[..err.len().min(300)]
    );
    assert!(
        err.len() < 2_000,
        "the message does not repeat the huge value: {} bytes",
        err.len()
    );
    let wide = format!(
        "[store]\n{}",
        (0..100_000)
            .map(|i| format!("f{i} = 1\n"))
            .collect::<String>()
    );
    assert!(batpak_tui::preset::Preset::parse(&wide, "wide.toml").is_err());
}

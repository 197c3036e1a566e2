//! The workload generator: deterministic for a seed, denials through the gates, pause,
//! open-loop pacing, the workload mark, wipe, and the free-space floor.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use batpak::prelude::*;
use batpak_tui::preset::{GateSpec, Size, WorkloadSpec};
use batpak_tui::workload::{check_target, mark_dir, wipe, Workload};
use common::*;

fn spec() -> WorkloadSpec {
    WorkloadSpec {
        entities: 50,
        producers: 1,
        subscribers: 1,
        slow_subscribers: 1,
        readers: 1,
        min_free_disk: Size(0),
        ..WorkloadSpec::default()
    }
}

fn run_until(
    store: &Arc<Store>,
    spec: WorkloadSpec,
    gates: Option<GateSpec>,
    appended: u64,
) -> Res<batpak_tui::workload::WorkloadStats> {
    let w = Workload::start(store.clone(), spec, gates, false)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while w.stats().appended < appended && Instant::now() < deadline && !w.has_stopped() {
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(w.stop())
}

#[test]
fn the_same_seed_writes_the_same_events() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut written = Vec::new();
    for run in 0..2 {
        let store = Arc::new(Store::open(StoreConfig::new(
            dir.path().join(format!("run{run}")),
        ))?);
        run_until(&store, spec(), None, 300)?;
        let events = store.query(&Region::all().with_sequences(1..=300))?;
        written.push(
            events
                .into_iter()
                .map(|e| {
                    (
                        e.coordinate,
                        e.kind,
                        e.payload,
                        e.causation.map(|c| c.sequence()),
                    )
                })
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(written[0].len(), 300);
    assert_eq!(written[0], written[1]);
    assert!(
        written[0].iter().any(|e| e.3.is_some()),
        "some events name a cause"
    );
    Ok(())
}

#[test]
fn a_deny_share_produces_proposals_the_gates_deny() -> TestResult {
    let dir = tempfile::tempdir()?;
    let gates = GateSpec {
        max_payload: Some(Size(1024)),
        ..GateSpec::default()
    };
    let store = Arc::new(Store::open_with(
        StoreConfig::new(dir.path()),
        OpenOptions::default().with_gates(gates.build()),
    )?);
    let s = run_until(
        &store,
        WorkloadSpec {
            deny_share: 0.3,
            ..spec()
        },
        Some(gates),
        400,
    )?;
    assert!(s.denied > 50, "{s:?}");
    assert_eq!(store.stats().gates.denied, s.denied);
    assert_eq!(s.errors, 0);
    Ok(())
}

#[test]
fn a_paused_workload_appends_nothing_until_resumed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(StoreConfig::new(dir.path()))?);
    let w = Workload::start(store.clone(), spec(), None, true)?;
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(w.stats().appended, 0);
    assert!(w.is_paused());
    w.resume();
    let deadline = Instant::now() + Duration::from_secs(10);
    while (w.stats().appended < 10 || w.stats().reads == 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    w.pause();
    std::thread::sleep(Duration::from_millis(50));
    let paused_at = w.stats().appended;
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(w.stats().appended, paused_at);
    assert!(paused_at >= 10);
    let s = w.stop();
    assert!(
        s.received > 0 && s.reads > 0,
        "subscribers and readers ran: {s:?}"
    );
    Ok(())
}

#[test]
fn an_open_loop_target_paces_the_producers() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(StoreConfig::new(dir.path()))?);
    let w = Workload::start(
        store.clone(),
        WorkloadSpec {
            target_rate: 200,
            ..spec()
        },
        None,
        false,
    )?;
    std::thread::sleep(Duration::from_millis(500));
    let s = w.stop();
    assert!(
        (20..=200).contains(&s.appended),
        "200/s for half a second: {}",
        s.appended
    );
    assert_eq!(s.latency_us.len(), s.appended);
    Ok(())
}

#[test]
fn the_workload_stops_itself_below_the_free_space_floor_and_says_why() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(StoreConfig::new(dir.path()))?);
    let s = run_until(
        &store,
        WorkloadSpec {
            min_free_disk: Size(u64::MAX / 2),
            ..spec()
        },
        None,
        u64::MAX,
    )?;
    let why = s.stopped.ok_or("did not stop")?;
    assert!(
        why.contains("free space") && why.contains("below the floor"),
        "{why}"
    );
    Ok(())
}

#[test]
fn unmarked_data_is_refused_and_wipe_deletes_only_workload_data() -> TestResult {
    let parent = tempfile::tempdir()?;
    let real = parent.path().join("real");
    Store::open(StoreConfig::new(&real))?.close()?;
    let err = check_target(&real, false)
        .err()
        .ok_or("accepted real data")?;
    assert!(err.contains("--allow-existing-data"), "{err}");
    assert!(check_target(&real, true).is_ok());
    assert!(wipe(&real).is_err(), "not marked");
    assert!(real.join("store.id").exists(), "nothing was deleted");

    let synthetic = parent.path().join("synthetic");
    mark_dir(&synthetic)?;
    Store::open(StoreConfig::new(&synthetic))?.close()?;
    assert!(check_target(&synthetic, false).is_ok());
    std::fs::write(synthetic.join("notes.txt"), "mine")?;
    let err = wipe(&synthetic)
        .err()
        .ok_or("wiped a foreign file")?
        .to_string();
    assert!(err.contains("notes.txt"), "{err}");
    std::fs::remove_file(synthetic.join("notes.txt"))?;
    wipe(&synthetic)?;
    assert!(!synthetic.exists());
    Ok(())
}

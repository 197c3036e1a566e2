//! Durable consumers: every event of the region at least once, in order, none skipped —
//! across catch-up, live following, a ring too small to hold anything, restarts, and 500
//! kills of the process holding the store and the consumer.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use batpak::prelude::*;
use batpak::store::{Consumer, ConsumerError};
use common::*;

const KIND: EventKind = EventKind::new(4, 1);

fn config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.broadcast_capacity = 1;
    c.segment_max_bytes = 64 * 1024;
    c
}

fn append(store: &Store, i: u64) -> Res<u64> {
    let coord = Coordinate::new(format!("e{}", i % 5), "s");
    Ok(store.append(&coord, KIND, &i)?.sequence)
}

/// The sequences of the events of `KIND` in the store.
fn written(store: &Store) -> Res<Vec<u64>> {
    Ok(store
        .query(&Region::all().with_kind(KIND))?
        .iter()
        .map(|e| e.sequence)
        .collect())
}

/// Receives until nothing more comes within `quiet`.
fn drain(c: &mut Consumer<'_>, quiet: Duration) -> Res<Vec<u64>> {
    let mut got = Vec::new();
    while let Some(e) = c.recv_timeout(quiet)? {
        got.push(e.sequence);
    }
    Ok(got)
}

#[test]
fn a_consumer_catches_up_from_disk_then_follows_live_appends_without_a_gap_with_a_ring_of_one(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(config(dir.path()))?;
    for i in 0..3000 {
        append(&store, i)?;
    }
    let mut c = store.consumer("catch-up", Region::all().with_kind(KIND))?;
    let mut got = Vec::new();
    std::thread::scope(|s| -> TestResult {
        let producer = s.spawn(|| -> Result<(), String> {
            for i in 3000..23_000 {
                append(&store, i).map_err(|e| e.to_string())?;
            }
            Ok(())
        });
        while got.len() < 23_000 {
            match c.recv_timeout(Duration::from_secs(10))? {
                Some(e) => got.push(e.sequence),
                None => break,
            }
        }
        producer.join().map_err(|_| "producer panicked")??;
        Ok(())
    })?;
    let drops: u64 = store.stats().subscribers.iter().map(|s| s.dropped).sum();
    println!("a ring of one dropped {drops} doorbells; the consumer read every event from the log");
    assert_eq!(got, written(&store)?, "every event, in order, once");
    Ok(())
}

#[test]
fn a_reopened_consumer_resumes_after_its_acknowledged_position_and_two_names_keep_their_own(
) -> TestResult {
    let dir = tempfile::tempdir()?;
    {
        let store = Store::open(config(dir.path()))?;
        for i in 0..100 {
            append(&store, i)?;
        }
        let mut a = store.consumer("a", Region::all().with_kind(KIND))?;
        let first: Vec<u64> = (0..40)
            .map(|_| a.recv().map(|e| e.sequence))
            .collect::<Result<_, _>>()?;
        a.ack(first[29])?;
        let mut b = store.consumer("b", Region::all().with_kind(KIND))?;
        let all_b = drain(&mut b, Duration::from_millis(50))?;
        assert_eq!(all_b.len(), 100);
        b.ack_delivered()?;
        drop((a, b));
        store.close()?;
    }
    let store = Store::open(config(dir.path()))?;
    let events = written(&store)?;
    let mut a = store.consumer("a", Region::all().with_kind(KIND))?;
    assert_eq!(a.position(), events[29]);
    let again = drain(&mut a, Duration::from_millis(50))?;
    assert_eq!(
        again,
        events[30..].to_vec(),
        "a resumes after its 30th event"
    );
    let mut b = store.consumer("b", Region::all().with_kind(KIND))?;
    assert_eq!(drain(&mut b, Duration::from_millis(50))?, Vec::<u64>::new());
    let fresh = store.consumer("c", Region::all().with_kind(KIND))?;
    assert_eq!(fresh.position(), 0, "a new name starts at the beginning");
    Ok(())
}

#[test]
fn a_consumer_refuses_what_it_cannot_keep_its_word_on() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = Store::open(config(dir.path()))?;
    append(&store, 0)?;
    let mut c = store.consumer("one", Region::all())?;
    assert!(matches!(
        store.consumer("one", Region::all()),
        Err(ConsumerError::InUse(_))
    ));
    let e = c.recv()?;
    let err = c
        .ack(e.sequence + 1)
        .err()
        .ok_or("acked an event never delivered")?;
    assert!(err.to_string().contains("cannot acknowledge"), "{err}");
    assert!(matches!(
        store.consumer("", Region::all()),
        Err(ConsumerError::Name { .. })
    ));
    drop(c);
    store.consumer("one", Region::all())?;
    store.close()?;
    let ro = Store::open_read_only(dir.path())?;
    assert!(matches!(
        ro.consumer("one", Region::all()),
        Err(ConsumerError::ReadOnly(_))
    ));
    Ok(())
}

const CHILD_DIR: &str = "BATPAK_CONSUMER_KILL_DIR";

/// In a child process: appends from one thread while the consumer handles events on
/// another, writing each handled sequence to `handled.log` (one `write` per line) and
/// acknowledging every seventh. Runs until killed.
#[test]
fn consumer_kill_child_entry_point() -> TestResult {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return Ok(());
    };
    let dir = std::path::PathBuf::from(dir);
    let store = Store::open(config(&dir.join("store")))?;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("handled.log"))?;
    let mut c = store.consumer("killed", Region::all().with_kind(KIND))?;
    log.write_all(format!("start {}\n", c.position()).as_bytes())?;
    println!("ready");
    std::io::stdout().flush()?;
    std::thread::scope(|s| -> TestResult {
        s.spawn(|| -> Result<(), String> {
            let mut i = 0u64;
            loop {
                append(&store, i).map_err(|e| e.to_string())?;
                i += 1;
                if i.is_multiple_of(50) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        let mut n = 0u64;
        loop {
            let e = c.recv()?;
            log.write_all(format!("{}\n", e.sequence).as_bytes())?;
            n += 1;
            if n.is_multiple_of(7) {
                c.ack(e.sequence)?;
            }
        }
    })
}

/// Each run of the child: where it resumed after, and what it handled.
fn runs(log: &str) -> Res<Vec<(u64, Vec<u64>)>> {
    let mut out: Vec<(u64, Vec<u64>)> = Vec::new();
    for line in log.lines() {
        if let Some(p) = line.strip_prefix("start ") {
            out.push((p.parse()?, Vec::new()));
        } else {
            let run = out.last_mut().ok_or("a handled line before any start")?;
            run.1.push(line.parse()?);
        }
    }
    Ok(out)
}

#[test]
fn killing_the_process_of_a_consumer_500_times_loses_no_event_and_skips_none() -> TestResult {
    let dir = tempfile::tempdir()?;
    let kills = std::env::var("BATPAK_CONSUMER_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500u32);
    let mut rng = Rng::new(0xC0FFEE);
    let start = Instant::now();
    for _ in 0..kills {
        let (mut child, _lines) =
            start_ready_child("consumer_kill_child_entry_point", CHILD_DIR, dir.path())?;
        std::thread::sleep(Duration::from_millis(2 + rng.below(40)));
        if let Some(status) = child.try_wait()? {
            return Err(
                format!("the child ended by itself ({status}) instead of being killed").into(),
            );
        }
        child.kill()?;
        child.wait()?;
    }
    let took = start.elapsed();
    // A last, clean run handles what is left.
    let store = Store::open(config(&dir.path().join("store")))?;
    let events = written(&store)?;
    let mut c = store.consumer("killed", Region::all().with_kind(KIND))?;
    let resumed = c.position();
    let rest = drain(&mut c, Duration::from_millis(100))?;
    let text = std::fs::read_to_string(dir.path().join("handled.log"))?;
    let mut all = runs(&text)?;
    all.push((resumed, rest));
    let index_of = |seq: u64| {
        events
            .binary_search(&seq)
            .map_err(|_| format!("{seq} was never written"))
    };
    let mut last_handled: Option<usize> = None;
    let mut handled_once = vec![false; events.len()];
    let mut redelivered = 0usize;
    for (k, (position, handled)) in all.iter().enumerate() {
        // The run starts right after its position: the first event after it.
        let first = if *position == 0 {
            0
        } else {
            index_of(*position)? + 1
        };
        if let Some(l) = last_handled {
            assert!(
                first <= l + 1,
                "run {k} resumed after {position}, past the last event handled ({}): skipped",
                events[l]
            );
            redelivered += (l + 1) - first;
        }
        for (j, seq) in handled.iter().enumerate() {
            let at = index_of(*seq)?;
            assert_eq!(at, first + j, "run {k}: event {seq} out of order");
            handled_once[at] = true;
            last_handled = Some(at);
        }
        if handled.is_empty() {
            last_handled = last_handled.max(first.checked_sub(1));
        }
    }
    let missing = handled_once.iter().filter(|h| !**h).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} events never handled",
        events.len()
    );
    println!(
        "consumer kill loop: {kills} kills in {:.1} s, {} events, {} handled again after a kill, 0 skipped",
        took.as_secs_f64(),
        events.len(),
        redelivered
    );
    Ok(())
}

//! A read-only reader in another process while the writer compacts: the child holds the
//! store read-write, appends events of kept entities and of entities it then tombstones,
//! and compacts them away, round after round, printing every receipt. The parent opens
//! the store read-only (again every 400 ms) and reads it the whole time: `get`s of events
//! seen before (each touching whichever segment holds it, after compactions rewrote
//! some), kept entities' streams and a full query per open. No read may fail, and every
//! event read must be one the writer appended, with the payload it appended.

use std::collections::BTreeMap;

use batpak::store::RetentionPolicy;
use serde::{Deserialize, Serialize};

use super::*;

/// How long the child keeps compacting after it is ready.
const WRITER_RUNS: Duration = Duration::from_secs(4);
/// Kept entities (the doomed ones are new each round).
const KEPT: u64 = 4;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Written {
    entity: String,
    n: u64,
}

fn config(dir: &Path) -> StoreConfig {
    let mut c = StoreConfig::new(dir);
    c.segment_max_bytes = 8 * 1024;
    c
}

/// The child: rounds of 200 appends (half to kept entities, half to this round's doomed
/// ones), tombstones of the doomed ones and a compaction. Prints `A SEQ ENTITY N` per
/// append, `T SEQ ENTITY` per tombstone, `C REMOVED` per compaction; `ready` after the
/// first round, `done` at the end.
pub fn compactor(dir: &Path) -> TestResult {
    let store = Store::open(config(dir))?;
    let policy = RetentionPolicy {
        tombstones: true,
        ..RetentionPolicy::default()
    };
    let mut n = 0u64;
    let mut until = None;
    for round in 0.. {
        if until.is_some_and(|u| Instant::now() > u) {
            break;
        }
        for k in 0..100 {
            for entity in [
                format!("kept:{}", k % KEPT),
                format!("doomed:{round}:{}", k % KEPT),
            ] {
                let w = Written {
                    entity: entity.clone(),
                    n,
                };
                let r =
                    store.append(&Coordinate::new(&entity, "probe"), EventKind::new(1, 1), &w)?;
                println!("A {} {entity} {n}", r.sequence);
                n += 1;
            }
        }
        for k in 0..KEPT {
            let entity = format!("doomed:{round}:{k}");
            let r = store.tombstone_entity(&Coordinate::new(&entity, "probe"))?;
            println!("T {} {entity}", r.sequence);
        }
        let report = store.compact(&policy)?;
        println!("C {}", report.events_removed);
        if until.is_none() {
            until = Some(Instant::now() + WRITER_RUNS);
            println!("ready");
        }
    }
    store.close()?;
    println!("done");
    Ok(())
}

/// What the reader saw at one sequence: the entity, and the payload's counter (`None`
/// for a tombstone).
type Seen = BTreeMap<u64, (String, Option<u64>)>;

/// Reads of one read-only open, for about 400 ms: `get`s of events seen through earlier
/// opens (each touching whichever segment holds it, while the writer keeps compacting),
/// a kept entity's stream now and then, and a full query at the end.
fn read_for_a_while(
    store: &Store,
    seen: &mut Seen,
    reads: &mut u64,
    failures: &mut Vec<String>,
    rng: &mut Rng,
) {
    let started = Instant::now();
    let known: Vec<u64> = seen.keys().copied().collect();
    let record = |e: &Event, seen: &mut Seen, wrong: &mut Vec<String>| {
        let got = if e.kind.is_system() {
            (e.coordinate.entity.clone(), None)
        } else {
            match e.payload::<Written>() {
                Ok(w) if w.entity == e.coordinate.entity => (w.entity, Some(w.n)),
                Ok(w) => {
                    wrong.push(format!(
                        "sequence {} of {} holds {w:?}",
                        e.sequence, e.coordinate
                    ));
                    return;
                }
                Err(err) => {
                    wrong.push(format!("sequence {}: payload {err}", e.sequence));
                    return;
                }
            }
        };
        if let Some(before) = seen.insert(e.sequence, got.clone()) {
            if before != got {
                wrong.push(format!(
                    "sequence {} read as {before:?} and as {got:?}",
                    e.sequence
                ));
            }
        }
    };
    let mut round = 0u64;
    while started.elapsed() < Duration::from_millis(400) {
        round += 1;
        if !known.is_empty() {
            let seq = known[rng.below(known.len() as u64) as usize];
            let id = EventId::new(store.store_id(), seq);
            *reads += 1;
            match store.get(id) {
                Ok(Some(e)) => record(&e, seen, failures),
                // A compaction may have removed a doomed event this open still indexes.
                Ok(None) => {}
                Err(e) => failures.push(format!("get {id}: {e}")),
            }
        }
        if round.is_multiple_of(50) {
            let entity = format!("kept:{}", rng.below(KEPT));
            *reads += 1;
            match store.stream(&entity) {
                Ok(events) => events.iter().for_each(|e| record(e, seen, failures)),
                Err(e) => failures.push(format!("stream {entity}: {e}")),
            }
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    *reads += 1;
    match store.query(&Region::all()) {
        Ok(events) => events.iter().for_each(|e| record(e, seen, failures)),
        Err(e) => failures.push(format!("query: {e}")),
    }
}

#[test]
fn a_read_only_reader_in_another_process_reads_without_errors_while_the_writer_compacts(
) -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("store");
    let mut kid = Kid::start("compactor", &dir)?;
    kid.wait_for("ready", Duration::from_secs(30))?;
    let mut seen = Seen::new();
    let (mut reads, mut opens) = (0u64, 0u64);
    let mut failures: Vec<String> = Vec::new();
    let mut rng = Rng::new(0x7e57);
    let deadline = Instant::now() + WRITER_RUNS + Duration::from_secs(10);
    while kid.child.try_wait()?.is_none() && Instant::now() < deadline {
        opens += 1;
        match Store::open_read_only(&dir) {
            Ok(store) => read_for_a_while(&store, &mut seen, &mut reads, &mut failures, &mut rng),
            Err(e) => failures.push(format!("read-only open: {e}")),
        }
    }
    let (code, lines) = kid.finish(Duration::from_secs(20))?;
    assert_eq!(
        code,
        Some(0),
        "the writer failed: {:?}",
        &lines[lines.len().saturating_sub(5)..]
    );
    assert!(
        lines.iter().any(|l| l == "done"),
        "the writer did not finish"
    );

    // What the writer appended, by sequence.
    let mut written = Seen::new();
    let mut removed = 0u64;
    let mut compactions = 0u64;
    for l in &lines {
        let f: Vec<&str> = l.split(' ').collect();
        match f.as_slice() {
            ["A", seq, entity, n] => {
                written.insert(seq.parse()?, (entity.to_string(), Some(n.parse()?)));
            }
            ["T", seq, entity] => {
                written.insert(seq.parse()?, (entity.to_string(), None));
            }
            ["C", n] => {
                removed += n.parse::<u64>()?;
                compactions += 1;
            }
            _ => {}
        }
    }
    // The probe means something only if compactions removed events while it read.
    assert!(
        compactions >= 5 && removed > 0,
        "{compactions} compactions removed {removed} events"
    );
    assert!(
        opens >= 5 && !seen.is_empty(),
        "{opens} opens saw {} events",
        seen.len()
    );

    let not_written: Vec<String> = seen
        .iter()
        .filter(|(seq, got)| written.get(seq) != Some(got))
        .take(5)
        .map(|(seq, got)| {
            format!(
                "sequence {seq} read as {got:?}, written as {:?}",
                written.get(seq)
            )
        })
        .collect();
    println!(
        "{reads} reads through {opens} read-only opens, {} failed; the writer ran \
         {compactions} compactions removing {removed} events",
        failures.len()
    );
    let mut f = Findings::default();
    let failed = failures.len();
    f.expect(failures.is_empty(), || {
        failures.dedup();
        format!(
            "{failed} of {reads} reads ({opens} read-only opens) failed while the writer ran \
             {compactions} compactions removing {removed} events; first: {}",
            failures
                .iter()
                .take(3)
                .cloned()
                .collect::<Vec<_>>()
                .join(" / ")
        )
    });
    f.expect(not_written.is_empty(), || {
        format!(
            "events the writer did not append: {}",
            not_written.join("; ")
        )
    });
    f.assert_none("reader during compaction");
    Ok(())
}

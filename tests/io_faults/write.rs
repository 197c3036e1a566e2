//! Scenarios of the sweep on the write path: appends, group commit, compaction, snapshot,
//! and the open and recovery after a crash.

use std::sync::{Mutex, OnceLock};

use batpak::fs::sim::SimFs;
use batpak::prelude::*;
use batpak::store::RetentionPolicy;

use super::common::sweep::{config, open_on, Acked, Outcome, Scenario};
use super::common::Res;
use super::{append, appends_then_close, events, events_of, finish, old_or_new, populated, Rng};

pub struct Appends;

impl Scenario for Appends {
    fn name(&self) -> &'static str {
        "append, batch, roll, read, checkpoint"
    }
    fn run(&self, fs: &SimFs) -> Outcome {
        let mut out = Outcome::default();
        let Some(store) = self.start(fs, &mut out) else {
            return out;
        };
        let mut rng = Rng::new(11);
        let mut failed = false;
        for i in 0..60u32 {
            let payload = rng.bytes(40 + (i as usize * 13) % 90);
            failed = append(&mut out, &store, i, &payload, failed);
            if i % 10 == 9 {
                if let Some(a) = out.acked.first() {
                    if store.get(EventId::new(store.store_id(), a.seq)).is_err() {
                        out.failed += 1;
                    }
                }
            }
        }
        finish(&mut out, store);
        out
    }
}

pub struct GroupCommit;

impl Scenario for GroupCommit {
    fn name(&self) -> &'static str {
        "group commit of three producers"
    }
    fn run(&self, fs: &SimFs) -> Outcome {
        let mut out = Outcome::default();
        let Some(store) = self.start(fs, &mut out) else {
            return out;
        };
        let shared = Mutex::new(Outcome::default());
        std::thread::scope(|s| {
            for p in 0..3u32 {
                let (store, shared) = (&store, &shared);
                s.spawn(move || {
                    let mut mine = Outcome::default();
                    let mut rng = Rng::new(100 + u64::from(p));
                    let mut failed = false;
                    for i in 0..20u32 {
                        let payload = rng.bytes(30 + (i as usize * 7) % 60);
                        failed = append(&mut mine, store, i * 3 + p, &payload, failed);
                    }
                    let mut all = shared.lock().unwrap_or_else(|e| e.into_inner());
                    all.acked.extend(mine.acked);
                    all.acked_after_failure += mine.acked_after_failure;
                    all.failed += mine.failed;
                });
            }
        });
        let all = shared.into_inner().unwrap_or_else(|e| e.into_inner());
        out.acked = all.acked;
        out.acked_after_failure = all.acked_after_failure;
        out.failed += all.failed;
        finish(&mut out, store);
        out
    }
}

/// A base store, a compaction dropping `e1`'s events before its tombstone, then more
/// appends. After healing: `e1`'s dropped events are all there or all gone (never some),
/// everything else is there.
pub struct Compaction(pub OnceLock<(SimFs, Vec<Event>)>);

impl Compaction {
    fn base_state(&self) -> &(SimFs, Vec<Event>) {
        self.0.get_or_init(|| {
            let fs = populated();
            let before = events_of(&fs);
            (fs, before)
        })
    }
}

impl Scenario for Compaction {
    fn name(&self) -> &'static str {
        "compaction"
    }
    fn base(&self) -> SimFs {
        self.base_state().0.duplicate()
    }
    fn run(&self, fs: &SimFs) -> Outcome {
        let mut out = Outcome::default();
        let Some(store) = self.start(fs, &mut out) else {
            return out;
        };
        let policy = RetentionPolicy {
            tombstones: true,
            ..RetentionPolicy::default()
        };
        out.step_ok = store.compact(&policy).is_ok();
        out.failed += u64::from(!out.step_ok);
        appends_then_close(&mut out, store, 17, 12, 45);
        out
    }
    fn check(&self, _fs: &SimFs, store: &Store, out: &Outcome) -> Res<()> {
        let old = old_or_new(store, &self.base_state().1)?;
        if out.step_ok && old {
            // A compaction that reported success and is then undone by the reopen.
            return Err("a successful compaction did not survive the reopen".into());
        }
        Ok(())
    }
}

/// A base store copied by a snapshot, then more appends. After healing: a snapshot that
/// reported success opens and holds every base event; the store itself lost nothing.
pub struct Snapshot(pub OnceLock<(SimFs, Vec<Event>)>);

impl Scenario for Snapshot {
    fn name(&self) -> &'static str {
        "snapshot"
    }
    fn base(&self) -> SimFs {
        self.0
            .get_or_init(|| {
                let fs = populated();
                let before = events_of(&fs);
                // The destination exists, empty: the snapshot checks it.
                batpak::fs::FileSystem::create_dir_all(&fs, std::path::Path::new("/sim/snap"))
                    .expect("destination");
                (fs, before)
            })
            .0
            .duplicate()
    }
    fn run(&self, fs: &SimFs) -> Outcome {
        let mut out = Outcome::default();
        let Some(store) = self.start(fs, &mut out) else {
            return out;
        };
        out.step_ok = store.snapshot("/sim/snap").is_ok();
        out.failed += u64::from(!out.step_ok);
        appends_then_close(&mut out, store, 23, 8, 45);
        out
    }
    fn check(&self, fs: &SimFs, store: &Store, out: &Outcome) -> Res<()> {
        let before = &self.0.get().ok_or("no base")?.1;
        for e in before {
            if store.get(e.id)?.as_ref() != Some(e) {
                return Err(format!("base event {} lost", e.sequence).into());
            }
        }
        if out.step_ok {
            let mut c = config();
            c.data_dir = "/sim/snap".into();
            let snap = open_on(fs, c).map_err(|e| format!("the snapshot does not open: {e}"))?;
            let got = events(&snap)?;
            if got.len() < before.len() || got[..before.len()] != before[..] {
                return Err(format!(
                    "the snapshot holds {} of {} events",
                    got.len(),
                    before.len()
                )
                .into());
            }
        }
        Ok(())
    }
}

/// A file system a crash left behind (torn unsynced writes, no checkpoint), opened and
/// closed: the recovery's every call faulted. Every event acknowledged as durable before
/// the crash must be there.
pub struct Recovery(pub OnceLock<(SimFs, Vec<Acked>)>);

impl Recovery {
    fn crashed(&self) -> &(SimFs, Vec<Acked>) {
        self.0.get_or_init(|| {
            let fs = SimFs::new();
            let store = open_on(&fs, config()).expect("opens");
            let mut durable = Vec::new();
            let mut rng = Rng::new(5);
            for i in 0..40u32 {
                let payload = rng.bytes(60);
                let coord = Coordinate::new(format!("e{}", i % 3), "s");
                let mut item = BatchItem::raw(&coord, EventKind::new(1, 1), payload.clone());
                if i % 4 == 0 {
                    item = item.with_options(AppendOptions::default().durable());
                }
                let r = store.append_raw(item).expect("append");
                if r.durable {
                    durable.push(Acked {
                        seq: r.sequence,
                        durable: true,
                        payload,
                    });
                }
            }
            let cut = fs.power_cut(9);
            drop(store);
            (cut, durable)
        })
    }
}

impl Scenario for Recovery {
    fn name(&self) -> &'static str {
        "open and recovery after a crash"
    }
    fn base(&self) -> SimFs {
        self.crashed().0.duplicate()
    }
    fn run(&self, fs: &SimFs) -> Outcome {
        let mut out = Outcome {
            acked: self.crashed().1.clone(),
            ..Outcome::default()
        };
        if let Some(store) = self.start(fs, &mut out) {
            finish(&mut out, store);
        }
        out
    }
}

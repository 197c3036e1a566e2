//! Scenarios of the sweep that open damaged or half-finished stores, and the offline verify.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use batpak::codec::header::{FileHeader, FileKind};
use batpak::fs::sim::{CrashMode, Replay, SimFs};
use batpak::fs::{FileSystem, OpenMode};
use batpak::prelude::*;
use batpak::store::RetentionPolicy;

use super::common::sweep::{config, Outcome, Scenario};
use super::common::Res;
use super::{appends_then_close, events, events_of, populated, Rng};

const DIR: &str = "/sim/data";

/// Opens the store of `s` and appends a few events, then closes it: what every scenario
/// here does after its own step (or instead of one).
fn open_then_appends(s: &dyn Scenario, fs: &SimFs, mut out: Outcome, seed: u64) -> Outcome {
    if let Some(store) = s.start(fs, &mut out) {
        appends_then_close(&mut out, store, seed, 6, 40);
    }
    out
}

/// Writes `bytes` at `off` of `path` and syncs it.
fn overwrite(fs: &SimFs, path: &Path, off: u64, bytes: &[u8]) -> std::io::Result<()> {
    let f = fs.open(path, OpenMode::ReadWrite)?;
    f.write_all_at(bytes, off)?;
    f.sync(SyncMode::SyncAll)
}

/// A salvage open of the store on `fs`.
fn salvage_open(fs: &SimFs) -> Result<Store, OpenError> {
    Store::open_with(
        config(),
        OpenOptions {
            salvage: true,
            ..OpenOptions::default().with_fs(Arc::new(fs.clone()))
        },
    )
}

/// A populated store and its events before anything happened to it.
type Base = OnceLock<(SimFs, Vec<Event>)>;

/// A store with a damaged frame in the middle of its second (sealed, synced) segment,
/// opened with salvage. After healing, a salvage open keeps a prefix of the old events.
pub struct Salvage(pub Base);

impl Salvage {
    fn state(&self) -> &(SimFs, Vec<Event>) {
        self.0.get_or_init(|| {
            let fs = populated();
            let before = events_of(&fs);
            let seg = Path::new(DIR).join("seg-0000000002.bpk");
            let old = fs.read_file(&seg).expect("segment 2")[300];
            overwrite(&fs, &seg, 300, &[!old]).expect("damage");
            (fs, before)
        })
    }
}

impl Scenario for Salvage {
    fn name(&self) -> &'static str {
        "salvage of a damaged segment"
    }
    fn base(&self) -> SimFs {
        self.state().0.duplicate()
    }
    fn open(&self, fs: &SimFs) -> Result<Store, OpenError> {
        salvage_open(fs)
    }
    fn run(&self, fs: &SimFs) -> Outcome {
        open_then_appends(self, fs, Outcome::default(), 31)
    }
    fn check(&self, _fs: &SimFs, store: &Store, _out: &Outcome) -> Res<()> {
        let before = &self.state().1;
        let now = events(store)?;
        // A prefix of the old events (everything before the damaged frame) ...
        let kept = now.iter().zip(before).take_while(|(a, b)| a == b).count();
        if kept == before.len() {
            return Err("salvage kept the damaged frame's events".into());
        }
        // ... and after it only new appends (written or acknowledged), none of the old.
        let old: std::collections::HashSet<&[u8]> =
            before.iter().map(|e| e.payload.as_slice()).collect();
        if let Some(e) = now[kept..]
            .iter()
            .find(|e| old.contains(e.payload.as_slice()))
        {
            return Err(
                format!("event {} is an old event kept past the damage", e.sequence).into(),
            );
        }
        Ok(())
    }
}

/// A store whose compaction a crash interrupted, opened: with its manifest written (the
/// open finishes the compaction) or with staged files only (the open removes them).
pub struct Interrupted {
    pub committed: bool,
    pub base: Base,
}

impl Interrupted {
    fn state(&self) -> &(SimFs, Vec<Event>) {
        self.base.get_or_init(|| {
            let fs = SimFs::recording();
            let store = super::open_on(&fs, config()).expect("opens");
            super::fill_base(&store);
            store
                .sync()
                .expect("every base event durable before the compaction");
            let before = events(&store).expect("reads");
            let policy = RetentionPolicy {
                tombstones: true,
                ..RetentionPolicy::default()
            };
            store.compact(&policy).expect("the compaction runs");
            drop(store);
            let mut replay = Replay::of(&fs);
            let manifest = Path::new(DIR).join("compact.manifest");
            let staged = |fs: &SimFs| {
                fs.list_dir(Path::new(DIR))
                    .is_ok_and(|names| names.iter().any(|n| n.ends_with(".compact")))
            };
            while replay.step() {
                let crashed = replay.crash(CrashMode::DropAll, 0);
                let has_manifest = crashed.exists(&manifest);
                if has_manifest == self.committed && (has_manifest || staged(&crashed)) {
                    return (crashed, before);
                }
            }
            panic!("the compaction never reached that state");
        })
    }
}

impl Scenario for Interrupted {
    fn name(&self) -> &'static str {
        if self.committed {
            "open finishing a committed compaction"
        } else {
            "open removing an uncommitted compaction"
        }
    }
    fn base(&self) -> SimFs {
        self.state().0.duplicate()
    }
    fn run(&self, fs: &SimFs) -> Outcome {
        open_then_appends(self, fs, Outcome::default(), 37)
    }
    fn check(&self, _fs: &SimFs, store: &Store, _out: &Outcome) -> Res<()> {
        let old = super::old_or_new(store, &self.state().1)?;
        match (self.committed, old) {
            (true, true) => Err("a committed compaction was undone".into()),
            (false, false) => Err("an uncommitted compaction took effect".into()),
            _ => Ok(()),
        }
    }
}

/// A store whose identity file is gone and whose newest segment holds only a garbled
/// header (a roll a crash cut), adopted by a salvage open.
pub struct Damaged(pub Base);

impl Damaged {
    fn state(&self) -> &(SimFs, Vec<Event>) {
        self.0.get_or_init(|| {
            // A run cut by a crash right after segment 3's header was written, unsynced and
            // garbled by the crash (what a roll a power cut interrupted leaves).
            let fs = SimFs::recording();
            let store = super::open_on(&fs, config()).expect("opens");
            let mut rng = Rng::new(7);
            while store.stats().segments.len() < 3 {
                let item = BatchItem::raw(
                    &Coordinate::new("e0", "s"),
                    EventKind::new(1, 1),
                    rng.bytes(50),
                );
                store.append_raw(item).expect("append");
            }
            drop(store);
            let dir = Path::new(DIR);
            let seg3 = dir.join("seg-0000000003.bpk");
            let mut replay = Replay::of(&fs);
            while replay.step() {
                if replay.live().read_file(&seg3).is_ok_and(|b| b.len() == 64) {
                    break;
                }
            }
            let garbled = (0..256u64).find_map(|seed| {
                let crashed = replay.crash(CrashMode::Garbage, seed);
                let bytes = crashed.read_file(&seg3).ok()?;
                let bad = FileHeader::decode(&bytes, FileKind::Segment).is_err();
                (bytes.len() == 64 && bad).then_some(crashed)
            });
            let fs = garbled.expect("a crash that leaves a garbled header");
            let before = events_of(&fs.duplicate());
            fs.remove_file(&dir.join("store.id")).expect("identity");
            fs.sync_dir(dir).expect("sync");
            (fs, before)
        })
    }
}

impl Scenario for Damaged {
    fn name(&self) -> &'static str {
        "salvage adopting a directory without the identity file, with a torn newest segment"
    }
    fn base(&self) -> SimFs {
        self.state().0.duplicate()
    }
    /// Segment files without `store.id` are refused by a plain open (an interrupted copy);
    /// a salvage open adopts them.
    fn open(&self, fs: &SimFs) -> Result<Store, OpenError> {
        salvage_open(fs)
    }
    fn run(&self, fs: &SimFs) -> Outcome {
        open_then_appends(self, fs, Outcome::default(), 41)
    }
    fn check(&self, _fs: &SimFs, store: &Store, _out: &Outcome) -> Res<()> {
        for e in &self.state().1 {
            if store.get(e.id)?.as_ref() != Some(e) {
                return Err(format!("event {} lost", e.sequence).into());
            }
        }
        Ok(())
    }
}

/// The offline verify of a closed store, then an open and appends. A verify that meets a
/// failing read reports it or returns an error; one that meets only resumed faults is clean.
pub struct Verify(pub OnceLock<SimFs>);

impl Scenario for Verify {
    fn name(&self) -> &'static str {
        "offline verify"
    }
    fn base(&self) -> SimFs {
        self.0.get_or_init(populated).duplicate()
    }
    fn run(&self, fs: &SimFs) -> Outcome {
        let mut out = Outcome::default();
        let verified = batpak::store::verify_on(fs, Path::new(DIR), |_, _| {});
        out.step_ok = verified.is_ok_and(|r| r.problems.is_empty());
        out.failed += u64::from(!out.step_ok);
        open_then_appends(self, fs, out, 43)
    }
}

//! The I/O-error sweep driver shared by every scenario: a scenario is run once per I/O call
//! it makes, with that call given a fault (each of `Fault::ALL`), once or from then on.
//! After each run the disk is healed and the store reopened, and the one oracle of the
//! sweep holds:
//! - no panic;
//! - no append is acknowledged to a producer after one of its appends failed (a failed
//!   write or sync poisons the store);
//! - a fault the engine must resume (EINTR, a short read or write) changes nothing: no
//!   operation fails, nothing is poisoned, every append is acknowledged;
//! - a fault that only hit reads (reads, sizes, listings, maps, opens for reading)
//!   poisons nothing;
//! - after healing, the store opens unpoisoned and every acknowledged event is there,
//!   byte for byte (every durable one after a sync that lost its data);
//! - whatever the scenario checks of its own (a compaction's all-or-nothing, a snapshot
//!   that opens, ...).
//!
//! Every run's call sites (engine file and line, the method) are collected with the
//! faults they were given, so the sweep reports what it covered.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;

use batpak::fs::sim::{Call, Fault, SimFs};
use batpak::prelude::*;

use super::Res;

/// An acknowledged event.
#[derive(Debug, Clone)]
pub struct Acked {
    pub seq: u64,
    pub durable: bool,
    pub payload: Vec<u8>,
}

/// What one run of a scenario saw.
#[derive(Debug, Default)]
pub struct Outcome {
    pub acked: Vec<Acked>,
    /// Appends acknowledged to a producer after one of its own appends failed.
    pub acked_after_failure: u64,
    /// Operations (appends or others) that returned an error.
    pub failed: u64,
    /// The store was poisoned at the end of the run.
    pub poisoned: bool,
    /// The scenario's own step (compaction, snapshot, ...) succeeded.
    pub step_ok: bool,
}

impl Outcome {
    /// Takes an append's result for a producer that has (`failed_before`) or has not seen
    /// one of its appends fail; returns whether this one failed in a way that ends the
    /// producer's run. A `ChainRead` refusal (the entity's previous event could not be
    /// read; nothing was written) counts as a failure but does not end it: later appends
    /// may be acknowledged, and every one of them must still be found.
    pub fn take(
        &mut self,
        result: Result<Vec<(AppendReceipt, Vec<u8>)>, AppendError>,
        failed_before: bool,
    ) -> bool {
        match result {
            Ok(rs) => {
                if failed_before {
                    self.acked_after_failure += rs.len() as u64;
                }
                self.acked.extend(rs.into_iter().map(|(r, payload)| Acked {
                    seq: r.sequence,
                    durable: r.durable,
                    payload,
                }));
                false
            }
            Err(e) => {
                self.failed += 1;
                !matches!(e, AppendError::ChainRead(_))
            }
        }
    }
}

/// The store every scenario opens: `/sim/data`, 4 KiB segments (rolls), a sync every 8
/// events.
pub fn config() -> StoreConfig {
    let mut c = StoreConfig::new(std::path::Path::new("/sim/data"));
    c.segment_max_bytes = 4 * 1024;
    c.sync_every_n_events = 8;
    c
}

/// Opens a store with `config` on `fs`.
pub fn open_on(fs: &SimFs, config: StoreConfig) -> Result<Store, OpenError> {
    Store::open_with(
        config,
        OpenOptions::default().with_fs(std::sync::Arc::new(fs.clone())),
    )
}

/// One scenario of the sweep.
pub trait Scenario: Sync {
    fn name(&self) -> &'static str;
    /// The file system a run starts from (a fresh one, or a store made earlier).
    fn base(&self) -> SimFs {
        SimFs::new()
    }
    /// Opens the store of this scenario on `fs`.
    fn open(&self, fs: &SimFs) -> Result<Store, OpenError> {
        open_on(fs, config())
    }
    /// Opens the store for a run; a failure is counted in `out`.
    fn start(&self, fs: &SimFs, out: &mut Outcome) -> Option<Store> {
        let store = self.open(fs).ok();
        out.failed += u64::from(store.is_none());
        store
    }
    /// The run.
    fn run(&self, fs: &SimFs) -> Outcome;
    /// Checks of its own on the healed, reopened store.
    fn check(&self, _fs: &SimFs, _store: &Store, _outcome: &Outcome) -> Res<()> {
        Ok(())
    }
}

/// Sites (file, line, method) and the faults they were given, once (false) and from then
/// on (true).
pub type Sites = BTreeMap<(&'static str, u32, Call), BTreeSet<(Fault, bool)>>;

/// What a sweep covered.
#[derive(Default)]
pub struct Figures {
    pub runs: u64,
    /// Calls of each scenario each fault applied to in a clean run.
    pub points: Vec<String>,
    pub sites: Sites,
    /// Sites a clean run of some scenario reaches: each must get every fault.
    pub clean: BTreeSet<(&'static str, u32, Call)>,
}

impl Figures {
    /// Distinct (site, fault, once or persistent) points faulted.
    pub fn fault_points(&self) -> usize {
        self.sites.values().map(BTreeSet::len).sum()
    }

    /// One line for the test's output.
    pub fn report(&self, what: &str) -> String {
        let files: BTreeSet<&str> = self.sites.keys().map(|k| k.0).collect();
        format!(
            "{what}: {} runs, 0 violations; {} distinct call sites in {} files, {} distinct fault points \
             (site x fault x once/persistent); calls per fault: {}",
            self.runs,
            self.sites.len(),
            files.len(),
            self.fault_points(),
            self.points.join("; ")
        )
    }
}

/// Sweeps `s` with every fault at every call, once and from then on.
pub fn sweep(s: &dyn Scenario, figures: &mut Figures) -> Res<()> {
    let base = s.base();
    let clean = s.run(&base);
    figures.clean.extend(clean_sites(&base));
    if clean.failed > 0 || clean.acked.is_empty() {
        return Err(format!("{}: the clean run fails: {clean:?}", s.name()).into());
    }
    let mut counts = Vec::new();
    for fault in Fault::ALL {
        let probe = s.base();
        probe.inject(fault, u64::MAX, false);
        s.run(&probe);
        let points = probe.fault_points();
        counts.push(format!("{fault:?} {points}"));
        for at in 0..points {
            for persistent in [false, true] {
                one(
                    s,
                    fault,
                    Target::Call(at),
                    persistent,
                    clean.acked.len(),
                    figures,
                )?;
            }
        }
    }
    // Threads interleave differently from run to run, so the Nth call is not always the
    // same one: a site of the clean run that missed a fault gets it at its first call.
    let mut targeted = 0;
    for (file, line, call) in clean_sites(&base) {
        let got = figures
            .sites
            .get(&(file, line, call))
            .cloned()
            .unwrap_or_default();
        for fault in Fault::ALL.into_iter().filter(|f| f.applies_to(call)) {
            for persistent in [false, true] {
                if !got.contains(&(fault, persistent)) {
                    one(
                        s,
                        fault,
                        Target::Site(file, line, call),
                        persistent,
                        clean.acked.len(),
                        figures,
                    )?;
                    targeted += 1;
                }
            }
        }
    }
    if targeted > 0 {
        counts.push(format!("{targeted} runs aimed at one site"));
    }
    figures
        .points
        .push(format!("{} ({})", s.name(), counts.join(", ")));
    Ok(())
}

fn clean_sites(fs: &SimFs) -> Vec<(&'static str, u32, Call)> {
    fs.call_sites()
        .iter()
        .map(|c| (c.file, c.line, c.call))
        .collect()
}

/// Where a run's fault goes: the Nth call it applies to, or the first call of one site.
#[derive(Clone, Copy)]
enum Target {
    Call(u64),
    Site(&'static str, u32, Call),
}

fn one(
    s: &dyn Scenario,
    fault: Fault,
    target: Target,
    persistent: bool,
    clean_acks: usize,
    figures: &mut Figures,
) -> Res<()> {
    let fs = s.base();
    let place = match target {
        Target::Call(at) => {
            fs.inject(fault, at, persistent);
            format!("call {at}")
        }
        Target::Site(file, line, call) => {
            fs.inject_at_site(fault, (file, line, call), 0, persistent);
            format!("the first {call:?} of {file}:{line}")
        }
    };
    let mut what = format!(
        "{}: {fault:?} at {place}{}",
        s.name(),
        if persistent { " and after" } else { "" }
    );
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| s.run(&fs)))
        .map_err(|_| format!("{what}: panic"))?;
    fs.clear_injection();
    let mut hit: Vec<Call> = Vec::new();
    let mut hit_at: Vec<String> = Vec::new();
    for site in fs.call_sites() {
        figures
            .sites
            .entry((site.file, site.line, site.call))
            .or_default()
            .extend(site.faults.iter().map(|f| (*f, persistent)));
        if !site.faults.is_empty() {
            hit.push(site.call);
            hit_at.push(format!("{}:{} {:?}", site.file, site.line, site.call));
        }
    }
    figures.runs += 1;
    what = format!("{what} (hit {})", hit_at.join(", "));
    if outcome.acked_after_failure > 0 {
        return Err(format!(
            "{what}: {} appends acknowledged after one failed",
            outcome.acked_after_failure
        )
        .into());
    }
    if !fault.fails()
        && (outcome.failed > 0 || outcome.poisoned || outcome.acked.len() != clean_acks)
    {
        return Err(format!("{what}: a resumed fault changed the run: {outcome:?}").into());
    }
    if !hit.is_empty() && hit.iter().all(|c| c.reads_only()) && outcome.poisoned {
        return Err(format!("{what}: a fault on a read poisoned the store").into());
    }
    let store = s
        .open(&fs)
        .map_err(|e| format!("{what}: does not reopen after healing: {e}"))?;
    // A sync that failed may have lost what it covered (Linux drops the pages), and the
    // store then cuts it: only durable receipts must survive it.
    let only_durable = hit.contains(&Call::Sync);
    check_acked(&store, &outcome, only_durable).map_err(|e| format!("{what}: {e}"))?;
    if store.stats().poisoned.is_some() {
        return Err(format!("{what}: the reopened store is poisoned").into());
    }
    s.check(&fs, &store, &outcome)
        .map_err(|e| format!("{what}: {e}"))?;
    survives_a_power_cut(s, &fs, store, &outcome).map_err(|e| format!("{what}: {e}").into())
}

/// After healing, the store takes a durable append, and a power cut then keeps it and every
/// event acknowledged as durable: nothing the faulted run left (a cache showing writes the
/// disk lost) undermines what is synced later.
fn survives_a_power_cut(s: &dyn Scenario, fs: &SimFs, store: Store, outcome: &Outcome) -> Res<()> {
    let payload = b"after healing".to_vec();
    let item = BatchItem::raw(
        &Coordinate::new("healed", "s"),
        EventKind::new(1, 1),
        payload.clone(),
    )
    .with_options(AppendOptions::default().durable());
    let r = store
        .append_raw(item)
        .map_err(|e| format!("a durable append after healing: {e}"))?;
    let cut = fs.power_cut(r.sequence);
    drop(store);
    let store = s
        .open(&cut)
        .map_err(|e| format!("does not open after a power cut that followed the healing: {e}"))?;
    if store.get(r.id)?.map(|e| e.payload) != Some(payload) {
        return Err(format!("the durable append {} after healing is lost", r.sequence).into());
    }
    let durable = Outcome {
        acked: outcome
            .acked
            .iter()
            .filter(|a| a.durable)
            .cloned()
            .collect(),
        ..Outcome::default()
    };
    check_acked(&store, &durable, true)
        .map_err(|e| format!("after the power cut that followed the healing: {e}"))?;
    Ok(())
}

/// Every acknowledged event is there, identical (with `only_durable`, only those
/// acknowledged as durable must be).
fn check_acked(store: &Store, outcome: &Outcome, only_durable: bool) -> Res<()> {
    for a in &outcome.acked {
        let must = a.durable || !only_durable;
        match store.get(EventId::new(store.store_id(), a.seq))? {
            Some(e) if e.payload == a.payload => {}
            Some(_) => return Err(format!("event {} differs", a.seq).into()),
            None if must => return Err(format!("acknowledged event {} lost", a.seq).into()),
            None => {}
        }
    }
    Ok(())
}

/// Sites a sweep reached but never gave some fault that applies to them, once and from
/// then on: "file:line method (missing faults)"; those a clean run reaches first.
pub fn gaps(figures: &Figures) -> (Vec<String>, Vec<String>) {
    let (mut first, mut later) = (Vec::new(), Vec::new());
    for (&(file, line, call), got) in &figures.sites {
        let missing: Vec<String> = Fault::ALL
            .iter()
            .filter(|f| f.applies_to(call))
            .flat_map(|f| [(*f, false), (*f, true)])
            .filter(|p| !got.contains(p))
            .map(|(f, p)| format!("{f:?}{}", if p { "+" } else { "" }))
            .collect();
        if missing.is_empty() {
            continue;
        }
        let text = format!("{file}:{line} {call:?} ({})", missing.join(" "));
        if figures.clean.contains(&(file, line, call)) {
            first.push(text);
        } else {
            later.push(text);
        }
    }
    (first, later)
}

//! `Store::wait_durable` and `Store::try_submit`, as an application uses them.
#![cfg(feature = "testkit")]

mod common;

use std::path::Path;
use std::sync::Arc;

use batpak::fs::sim::SimFs;
use batpak::prelude::*;
use common::*;

fn open(fs: &SimFs, cfg: impl FnOnce(&mut StoreConfig)) -> Result<Store, OpenError> {
    let mut c = StoreConfig::new(Path::new("/sim/data"));
    cfg(&mut c);
    Store::open_with(c, OpenOptions::default().with_fs(Arc::new(fs.clone())))
}

#[test]
fn an_event_waited_durable_survives_a_power_cut_that_takes_the_unsynced_ones_after_it() -> TestResult
{
    let fs = SimFs::new();
    let store = open(&fs, |c| c.sync_every_n_events = 1000)?;
    let coord = Coordinate::new("order:1", "s");
    let kept = store.append(&coord, EventKind::new(1, 1), &1u32)?;
    assert!(!kept.durable, "a sync every 1000 events leaves it unsynced");
    store.wait_durable(kept.sequence)?;
    assert!(store.stats().durable_sequence >= kept.sequence);
    // Waiting again costs nothing: a sync already covers it.
    let syncs = store.stats().syncs;
    store.wait_durable(kept.sequence)?;
    assert_eq!(store.stats().syncs, syncs, "a second wait synced again");
    let after = fs.power_cut(7);
    drop(store);
    let store = open(&after, |c| c.sync_every_n_events = 1000)?;
    assert!(store.get(kept.id)?.is_some(), "the waited event is gone");
    Ok(())
}

#[test]
fn waiting_for_a_sequence_not_written_yet_is_an_error_naming_both_numbers() -> TestResult {
    let fs = SimFs::new();
    let store = open(&fs, |_| {})?;
    let r = store.append(&Coordinate::new("e", "s"), EventKind::new(1, 1), &1u32)?;
    let err = store
        .wait_durable(r.sequence + 5)
        .err()
        .ok_or("waited for an event that does not exist")?;
    assert_eq!(
        err,
        SyncError::NotWritten {
            sequence: r.sequence + 5,
            written: r.sequence
        }
    );
    assert!(
        err.to_string().contains(&format!("{}", r.sequence + 5)),
        "{err}"
    );
    Ok(())
}

#[test]
fn try_submit_never_blocks_hands_back_what_did_not_fit_and_loses_nothing_it_queued() -> TestResult {
    let fs = SimFs::new();
    let store = open(&fs, |c| c.writer_channel_capacity = 2)?;
    let coord = Coordinate::new("e", "s");
    let (mut tickets, mut full) = (Vec::new(), 0u32);
    for i in 0..50_000u32 {
        let item = BatchItem::new(&coord, EventKind::new(1, 1), &i)?;
        match store.try_submit(item) {
            Ok(t) => tickets.push((i, t)),
            Err(TrySubmitError::Full(back)) => {
                full += 1;
                let again: u32 = rmp_serde::from_slice(back.payload())?;
                assert_eq!(again, i, "the item handed back is the one offered");
            }
            Err(e) => return Err(format!("refused: {e}").into()),
        }
    }
    assert!(full > 0, "50,000 offers never found a channel of 2 full");
    assert!(!tickets.is_empty());
    let n = tickets.len() as u64;
    for (i, t) in tickets {
        let r = t.wait()?;
        let e = store.get(r.id)?.ok_or("a queued event is missing")?;
        let v: u32 = rmp_serde::from_slice(&e.payload)?;
        assert_eq!(v, i);
    }
    assert_eq!(store.stats().events, n, "only what was queued was written");
    store.close()?;
    let refused = store.try_submit(BatchItem::new(&coord, EventKind::new(1, 1), &0u32)?);
    assert!(
        matches!(refused, Err(TrySubmitError::Refused(AppendError::Closed))),
        "a closed store queued it or said {:?}",
        refused.err().map(|e| e.to_string())
    );
    Ok(())
}

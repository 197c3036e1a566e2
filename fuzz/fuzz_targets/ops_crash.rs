//! Operations with a crash: the input is a little program of appends (single, durable,
//! batches) and syncs on the simulated file system, then a power cut chosen by the input;
//! every event acknowledged as durable must be there, identical, after the reopen.
#![no_main]

mod bounded_alloc;

use std::path::Path;
use std::sync::Arc;

use batpak::fs::sim::SimFs;
use batpak::prelude::*;
use libfuzzer_sys::fuzz_target;

fn open(fs: &SimFs) -> Result<Store, OpenError> {
    let mut c = StoreConfig::new(Path::new("/sim/data"));
    c.segment_max_bytes = 4 * 1024;
    c.sync_every_n_events = 3;
    Store::open_with(c, OpenOptions::default().with_fs(Arc::new(fs.clone())))
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, program)) = data.split_first() else {
        return;
    };
    let fs = SimFs::new();
    let Ok(store) = open(&fs) else {
        return;
    };
    let coord = Coordinate::new("e", "s");
    let mut durable: Vec<(u64, Vec<u8>)> = Vec::new();
    for (i, op) in program.iter().take(64).enumerate() {
        let payload = vec![*op; usize::from(*op % 97)];
        let item = || BatchItem::raw(&coord, EventKind::new(1, 1), payload.clone());
        let receipts = match op % 4 {
            0 => store.append_raw(item()).map(|r| vec![r]),
            1 => store
                .append_raw(item().with_options(AppendOptions::default().durable()))
                .map(|r| vec![r]),
            2 => store.append_batch(vec![item(), item()], i % 2 == 0),
            _ => store.sync().map(|()| Vec::new()).map_err(|e| AppendError::NotWritten(e.to_string())),
        };
        let Ok(receipts) = receipts else {
            break;
        };
        durable.extend(receipts.iter().filter(|r| r.durable).map(|r| (r.sequence, payload.clone())));
    }
    let after = fs.power_cut(u64::from(seed) * 0x9e37_79b9);
    drop(store);
    let store = open(&after).expect("the store opens after a power cut");
    for (seq, payload) in durable {
        let got = store
            .get(EventId::new(store.store_id(), seq))
            .expect("a durable event reads back");
        assert_eq!(got.map(|e| e.payload), Some(payload), "durable event {seq}");
    }
});

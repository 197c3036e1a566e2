//! A damaged index checkpoint next to an intact segment: the open detects it and rebuilds,
//! or uses it when intact; never a panic.
#![no_main]

mod bounded_alloc;

mod template;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let t = template::template();
    let ckpt = template::damaged(&t.checkpoint, data);
    template::with_store(
        &[("seg-0000000001.bpk", &t.segment), ("index.ckpt", &ckpt)],
        template::read_all,
    );
});

//! A damaged segment (a real one with fuzzed bytes XORed in, sometimes cut short): the open
//! and every read either refuse or return data, never panic or allocate by a bad length.
#![no_main]

mod bounded_alloc;

mod template;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let t = template::template();
    let seg = template::damaged(&t.segment, data);
    template::with_store(&[("seg-0000000001.bpk", &seg)], template::read_all);
});

//! The frame decoder on arbitrary bytes: frames or an error, never a panic, and never an
//! allocation sized by an untrusted length.
#![no_main]

mod bounded_alloc;

use batpak::codec::frame::{decode, Base};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let base = Base { seq: 0, ts: 0 };
    let mut at = 0;
    while at < data.len() {
        match decode(&data[at..], &base) {
            Ok((_, used)) if used > 0 => at += used,
            _ => break,
        }
    }
});

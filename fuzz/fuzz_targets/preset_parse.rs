//! Preset text of any shape: an error or a preset, never a panic.
#![no_main]

mod bounded_alloc;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(p) = batpak_tui::preset::Preset::parse(text, "fuzz.toml") {
            let _ = p.store_config("./data").validate();
        }
    }
});

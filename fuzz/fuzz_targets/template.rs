//! A real store made once per fuzzing process; targets damage copies of its files.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use batpak::prelude::*;

#[allow(dead_code)] // each target uses some of the files
pub struct Template {
    pub dir: PathBuf,
    pub store_id: Vec<u8>,
    pub segment: Vec<u8>,
    pub checkpoint: Vec<u8>,
}

pub fn template() -> &'static Template {
    static T: OnceLock<Template> = OnceLock::new();
    T.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("batpak-fuzz-template-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(StoreConfig::new(&dir)).expect("template store");
        let mut last = None;
        for i in 0..24u32 {
            let opts = AppendOptions {
                causation: last.filter(|_| i % 3 == 0),
                ..AppendOptions::default()
            };
            let r = store
                .append_with(&Coordinate::new(format!("e{}", i % 4), "s"), EventKind::new(1, 1), &format!("event {i}"), opts)
                .expect("append");
            last = Some(r.id);
        }
        store.close().expect("close");
        let read = |n: &str| std::fs::read(dir.join(n)).expect("template file");
        Template {
            store_id: read("store.id"),
            segment: read("seg-0000000001.bpk"),
            checkpoint: read("index.ckpt"),
            dir,
        }
    })
}

/// `base` with `data` XORed over it (wrapping), cut to `data`'s first byte when it is odd:
/// damage near a real file, where the interesting decoding happens.
pub fn damaged(base: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = base.to_vec();
    for (i, b) in data.iter().enumerate().skip(1) {
        let at = i % out.len().max(1);
        if let Some(x) = out.get_mut(at) {
            *x ^= b;
        }
    }
    if let Some(first) = data.first().filter(|f| *f & 1 == 1) {
        out.truncate(out.len() * usize::from(*first) / 256);
    }
    out
}

/// A fresh directory per input, holding the template's identity and `files`.
pub fn with_store(files: &[(&str, &[u8])], read: impl FnOnce(&Path)) {
    let t = template();
    let dir = t.dir.with_extension(format!("run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("run dir");
    std::fs::write(dir.join("store.id"), &t.store_id).expect("store.id");
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).expect("file");
    }
    read(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Opens read-only and reads everything; errors are fine, panics are not.
pub fn read_all(dir: &Path) {
    if let Ok(store) = Store::open_read_only(dir) {
        let _ = store.query(&Region::all());
        for e in 0..4 {
            let _ = store.stream(&format!("e{e}"));
        }
    }
}

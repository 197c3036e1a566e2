//! An interrupted snapshot: `batpak-tui snapshot` writes the identity file last, so a
//! destination without `store.id` holding a prefix of the segments is what a kill (or a
//! full disk) during the copy leaves. It must not open as a complete store: both opens
//! refuse naming `store.id`, verify exits 1, and the failed read-write open does not
//! write the identity file that would make the copy look finished.
//!
//! What the fix must provide: a directory with segments but no identity file is refused
//! (salvage may adopt it explicitly; not checked here).

use super::*;

#[test]
fn an_interrupted_snapshot_without_its_identity_file_is_refused_not_opened_as_a_store() -> TestResult
{
    let tmp = tempfile::tempdir()?;
    let src = tmp.path().join("store");
    let events = segmented_store(&src)?;
    let dest = tmp.path().join("copy");
    let (code, out) = tui(&[
        "snapshot",
        &src.display().to_string(),
        &dest.display().to_string(),
    ])?;
    assert_eq!(code, Some(0), "snapshot: {out}");
    let segs = seg_numbers(&dest)?;
    assert!(segs.len() >= 4, "the copy holds {segs:?}");
    assert!(
        dest.join("store.id").exists(),
        "the finished copy has its identity"
    );

    // The copy as an interruption leaves it: the newest two segments and the identity
    // file (written last) never arrived.
    std::fs::remove_file(dest.join("store.id"))?;
    for &no in &segs[segs.len() - 2..] {
        std::fs::remove_file(dest.join(seg_name(no)))?;
    }

    let mut f = Findings::default();
    let (code, out) = verify_cli(&dest)?;
    f.expect(code == Some(1), || {
        format!("verify exits {code:?}, not 1: {}", out.trim())
    });
    f.expect(out.contains("store.id"), || {
        format!("verify does not mention store.id: {}", out.trim())
    });
    match Store::open_read_only(&dest) {
        Err(e) => f.expect(e.to_string().contains("store.id"), || {
            format!("the read-only open fails without mentioning store.id: {e}")
        }),
        Ok(store) => f.expect(false, || {
            format!(
                "the read-only open succeeds with {} of the {events} events",
                store.stats().events
            )
        }),
    }
    match Store::open(StoreConfig::new(&dest)) {
        Err(e) => f.expect(e.to_string().contains("store.id"), || {
            format!("the read-write open fails without mentioning store.id: {e}")
        }),
        Ok(store) => {
            f.expect(false, || {
                format!(
                    "the read-write open succeeds with {} of the {events} events",
                    store.stats().events
                )
            });
            drop(store);
        }
    }
    f.expect(!dest.join("store.id").exists(), || {
        "after the read-write open the copy has a store.id and looks finished".into()
    });
    f.assert_none("interrupted snapshot");
    Ok(())
}

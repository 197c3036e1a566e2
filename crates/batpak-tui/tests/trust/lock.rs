//! The lock: a child holds the store read-write and keeps appending; the parent deletes
//! `batpak.lock`. A second writer must still be refused, with an error that says the store
//! is held (not one about the damage two writers did): `Store::open` of the same
//! directory, and `batpak-tui compact` (which takes the lock). Each on its own store, so
//! one second writer's damage cannot make the other look refused.
//!
//! What the fix must provide: a lock on something a second open cannot replace (or the
//! detection of a foreign writer before it loses data), reported as the store being held
//! (the message mentions the lock or another writer).

use super::*;

/// The child: opens the store and appends every 2 ms until killed (at most 60 s).
pub fn holder(dir: &Path) -> TestResult {
    let store = Store::open(StoreConfig::new(dir))?;
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(60) {
        let r = append_nth(&store, n, AppendOptions::default())?;
        if n == 0 {
            println!("ready");
        }
        println!("A {}", r.sequence);
        n += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// Whether a refusal says the store is held by someone else.
fn says_held(msg: &str) -> bool {
    let m = msg.to_lowercase();
    m.contains("lock") || m.contains("another")
}

/// Starts a holder on a new store, checks that a second writer is refused while the lock
/// file is there, deletes it, and runs `second` (the second writer's attempt); the holder
/// must still be running afterwards.
fn with_holder_and_deleted_lock(
    second: impl FnOnce(&Path, &mut Findings) -> TestResult,
) -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("store");
    let mut kid = Kid::start("lock-holder", &dir)?;
    kid.wait_for("ready", Duration::from_secs(30))?;
    // The control: with the lock file in place a second open is refused.
    assert!(matches!(
        Store::open(StoreConfig::new(&dir)),
        Err(OpenError::Locked { .. })
    ));
    std::fs::remove_file(dir.join("batpak.lock"))?;
    let mut f = Findings::default();
    second(&dir, &mut f)?;
    kid.drain();
    let still_running = kid.child.try_wait()?.is_none();
    kid.kill()?;
    assert!(still_running, "the holder stopped: {}", kid.tail());
    f.assert_none("deleted lock file");
    Ok(())
}

#[test]
fn deleting_batpak_lock_does_not_let_a_second_store_open_write_beside_the_holder() -> TestResult {
    with_holder_and_deleted_lock(|dir, f| {
        match Store::open(StoreConfig::new(dir)) {
            Err(e) => f.expect(says_held(&e.to_string()), || {
                format!("the second open is refused, but not as a held store: {e}")
            }),
            Ok(store) => {
                let r = append_nth(&store, 1_000_000, AppendOptions::default().durable());
                f.expect(false, || {
                    format!(
                        "after batpak.lock was deleted, Store::open succeeded beside the \
                         running writer and appended: {:?}",
                        r.map(|r| r.sequence).map_err(|e| e.to_string())
                    )
                });
            }
        }
        Ok(())
    })
}

#[test]
fn deleting_batpak_lock_does_not_let_batpak_tui_compact_take_the_store() -> TestResult {
    with_holder_and_deleted_lock(|dir, f| {
        let path = dir.display().to_string();
        let (code, out) = tui(&["compact", &path, "--max-age", "3650d"])?;
        f.expect(code != Some(0) && says_held(&out), || {
            format!(
                "after batpak.lock was deleted, `batpak-tui compact` exits {code:?} beside the \
                 running writer: {}",
                out.trim()
            )
        });
        Ok(())
    })
}

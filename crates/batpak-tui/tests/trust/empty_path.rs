//! `StoreConfig::new("")`: an empty data directory is a clear error, and nothing is
//! written into the current directory. Checked in a child whose current directory is an
//! empty temporary directory.
//!
//! What the fix must provide: an error whose message says the path is empty, before any
//! file is touched.

use super::*;

/// The child: tries both opens of `""` and prints what each returned.
pub fn child() -> TestResult {
    match Store::open(StoreConfig::new("")) {
        Ok(_) => println!("read-write: opened"),
        Err(e) => println!("read-write: error: {e}"),
    }
    match Store::open_read_only("") {
        Ok(_) => println!("read-only: opened"),
        Err(e) => println!("read-only: error: {e}"),
    }
    println!("done");
    Ok(())
}

#[test]
fn an_empty_data_directory_path_is_a_clear_error_and_writes_nothing_in_the_current_directory(
) -> TestResult {
    let cwd = tempfile::tempdir()?;
    let kid = Kid::start_in("empty-path", cwd.path(), Some(cwd.path()))?;
    let (code, lines) = kid.finish(Duration::from_secs(30))?;
    assert_eq!(code, Some(0), "{lines:?}");
    let line = |prefix: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .cloned()
            .unwrap_or_default()
    };
    let (rw, ro) = (line("read-write: "), line("read-only: "));
    let left: Vec<String> = std::fs::read_dir(cwd.path())?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    let mut f = Findings::default();
    for got in [&rw, &ro] {
        f.expect(got.contains("error") && got.contains("empty"), || {
            format!("not an error saying the path is empty: {got:?}")
        });
    }
    f.expect(left.is_empty(), || {
        format!("the open wrote into the current directory: {left:?}")
    });
    f.assert_none("StoreConfig::new(\"\")");
    Ok(())
}

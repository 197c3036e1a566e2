//! Helpers of the workbench crate's tests: the engine tests' helpers (`tests/common` at
//! the workspace root, included as they are) and a way to run the `batpak-tui` binary.
#![allow(dead_code, unused_imports)]

#[path = "../../../../tests/common/mod.rs"]
mod engine;
pub use engine::*;

/// Runs `batpak-tui ARGS`; its exit code (`None`: killed by a signal) and its stdout
/// followed by its stderr.
pub fn tui(args: &[&str]) -> Res<(Option<i32>, String)> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_batpak-tui"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()?;
    Ok((
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    ))
}

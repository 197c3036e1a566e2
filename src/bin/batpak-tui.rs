//! `batpak-tui`: headless commands for inspecting and repairing a batpak data directory.

fn main() {
    std::process::exit(batpak_cli::run());
}

mod batpak_cli {
    pub fn run() -> i32 {
        0
    }
}

//! Prints the Rust snippet of every built-in preset (how `tests/snippets/` is made):
//! `cargo run --example export_presets`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for (name, _) in batpak_tui::preset::BUILTIN {
        let preset = batpak_tui::preset::Preset::builtin(name)?;
        let snippet = batpak_tui::preset::rust_snippet(&preset.store_config("./data"));
        std::fs::write(format!("tests/snippets/{name}.rs"), &snippet)?;
        println!("// {name}\n{snippet}");
    }
    Ok(())
}

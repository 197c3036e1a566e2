//! # batpak-tui
//!
//! What the `batpak-tui` workbench and its headless commands are built from, apart from
//! the engine ([`batpak`]): presets (a `StoreConfig` with its gates and workload, in TOML),
//! the synthetic and profiled workloads that drive a store, and the process sampler
//! (memory, CPU, descriptors) the panes and `bench` report.
//!
//! An application embeds `batpak` alone; this crate is for tools that run a store the way
//! the workbench does.

pub mod preset;
pub mod process;
pub mod workload;

//! The two examples of the batpak 0.1.0 tuning guide compile verbatim with one import.

use batpak::prelude::*;

// The bodies below are the guide's text, character for character.
#[rustfmt::skip]
fn embedded_device() -> StoreConfig {
let mut config = StoreConfig::new("/data/events");
config.segment_max_bytes = 16 * 1024 * 1024;  // 16 MB segments
config.fd_budget = 8;                           // minimal FDs
config.sync_every_n_events = 10;                // near-durable
config.writer_channel_capacity = 256;           // tight memory
config.cache_map_size_bytes = 4 * 1024 * 1024;  // 4 MB cache
    config
}

#[rustfmt::skip]
fn high_throughput_server() -> StoreConfig {
let mut config = StoreConfig::new("/var/lib/events");
config.segment_max_bytes = 1024 * 1024 * 1024;  // 1 GB segments
config.sync_every_n_events = 5000;               // batch syncs
config.sync_mode = SyncMode::SyncData;           // skip metadata
config.fd_budget = 256;                          // many open segments
config.writer_channel_capacity = 16384;          // high burst tolerance
config.broadcast_capacity = 32768;               // slow consumer tolerance
    config
}

#[test]
fn the_embedded_device_example_compiles_and_is_valid() {
    let c = embedded_device();
    assert_eq!(c.segment_max_bytes, 16 << 20);
    assert_eq!(c.fd_budget, 8);
    assert!(c.validate().is_ok());
}

#[test]
fn the_high_throughput_server_example_compiles_and_is_valid() {
    let c = high_throughput_server();
    assert_eq!(c.sync_mode, SyncMode::SyncData);
    assert_eq!(c.broadcast_capacity, 32768);
    assert!(c.validate().is_ok());
}

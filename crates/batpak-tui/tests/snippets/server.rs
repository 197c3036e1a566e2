let mut config = StoreConfig::new("./data");
config.segment_max_bytes = 1024 * 1024 * 1024;   // 1 GiB segments
config.sync_every_n_events = 5000;               // sync at least every 5000 events
config.fd_budget = 256;                          // 256 segment files open or mapped
config.writer_channel_capacity = 16384;          // 16384 queued appends before producers block
config.broadcast_capacity = 32768;               // 32768 events per subscriber ring
config.sync_mode = SyncMode::SyncData;           // fdatasync: skip metadata

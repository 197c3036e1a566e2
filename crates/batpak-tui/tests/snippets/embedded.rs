let mut config = StoreConfig::new("./data");
config.segment_max_bytes = 16 * 1024 * 1024;     // 16 MiB segments
config.sync_every_n_events = 10;                 // sync at least every 10 events
config.fd_budget = 8;                            // 8 segment files open or mapped
config.writer_channel_capacity = 256;            // 256 queued appends before producers block
config.cache_map_size_bytes = 4 * 1024 * 1024;   // 4 MiB projection cache

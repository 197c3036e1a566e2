let mut config = StoreConfig::new("./data");

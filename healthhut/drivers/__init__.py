"""Device drivers: protocol codecs (pure), transports, one driver per device family, emulators."""

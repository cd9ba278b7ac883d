"""The watcher daemon: one process that owns the store, keeps watched folders indexed
(`watcher`, with file events from `watch`), answers reads from other terminals on a Unix socket
(`rpc`, through the read facade), and is started, stopped and supervised by `process`."""

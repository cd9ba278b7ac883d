"""memex: ask questions of your own archives, privately, on your own machine.

Data flows one way: connectors (the `connectors` package, through the SDK: documents, errors,
hookspecs, connector, links) -> ingest -> index -> the read facade (api) -> the doors (cli,
daemon, service). Below them: access (who may read what), store (ledger, audit log, locks, file
modes), models (language models and embedders), answer (the answer pipeline and its checks),
eval (quality measurements); config holds settings and paths. No module imports upwards.
"""

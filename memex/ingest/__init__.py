"""Reading sources into the index: the connector registry (`plugins`), the sandboxed parser
workers (`sandbox`), chunking, the ingest pipeline with its ledger bookkeeping (`pipeline`) and
the progress protocol it reports through."""

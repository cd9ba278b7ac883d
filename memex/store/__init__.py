"""What memex keeps on disk besides the index: the ledger (what was read, from where, with which
labels), the audit log, the store lock, file modes of MEMEX_HOME, the labelling state that
follows policy edits, and the one SQLite helper (connections, WAL, migrations) they all use."""

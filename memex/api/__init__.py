"""The one way in. `wiring` builds a Memex from settings (the index, ledger, audit log, models,
policy, opened on first use); `reads.Reads` is the read facade every door calls (search, ask,
show, export, status, audit, explain), each for a principal resolved at the door; `worker`
queues generation so that reads never wait for the model; `commands` maps a read command's name
and JSON parameters onto the facade (for the CLI and the daemon's socket)."""

"""The bridge's one way to PostgreSQL: the `Session` every client holds, the named reads, the store
and its idempotent sink, the schema and its migrations, the history's maintenance, the embedded
server of the local profile, and the `bridge-status` command."""

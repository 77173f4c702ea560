"""The network edge: the Phoenix Channels ingest endpoint and its Python clients."""

"""The delivery ledger: one row per recipient and campaign, its fences, the workers' liveness leases,
the send log that reads it, and the sending servers messages go out through."""

# What other packages may import (tests/test_import_graph.py holds them to it).
__all__ = ["fences", "leases", "ledger", "retries", "send_log", "servers"]

"""Deliverability: what comes back after a message left (bounces, complaints), and what a
bulk sender is held to (VERP return paths, DKIM signing, pre-flight checks). See docs/deliverability.md."""

# The modules other packages may import (tests/test_import_graph.py holds them to it).
__all__ = ["bounces", "dkim", "identify", "mailbox", "preflight", "providers", "report", "verp"]

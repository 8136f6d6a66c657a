"""The audience: subscribers, their lists and subscriptions, suppressions, imports, exports, erasure."""

# What other packages may import (tests/test_import_graph.py holds them to it).
__all__ = ["csv_files", "exports", "gdpr", "imports", "links", "lists", "segments", "statistics", "subscribers",
           "subscriptions",
           "suppressions", "tokens"]

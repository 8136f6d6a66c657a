"""Engagement: tracked links and pixels, human/machine classification, buffered counting, reports."""

# What other packages may import (tests/test_import_graph.py holds them to it).
__all__ = ["classify", "events", "flush", "links", "report", "stats", "tokens"]

"""Deliverability: what makes receivers trust our mail (DKIM signing) and the checks before a send."""

# What other packages may import (tests/test_import_graph.py holds them to it).
__all__ = ["dkim", "preflight"]

"""Segments: subscribers chosen by rules over attributes, lists, signup date, engagement and bounces.

rules.py validates the JSON, compile.py turns it into SQL, segments.py saves, counts and previews.
"""

# What other packages may import (tests/test_import_graph.py holds them to it).
__all__ = ["compile", "rules", "segments"]

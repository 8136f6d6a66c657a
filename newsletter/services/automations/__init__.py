"""Automations: triggers turn events into enrollments; beat runs each enrollment's due step once.

automations.py defines automations and their steps, entry.py enrols (events, API events, date
attributes), runner.py claims due enrollments and runs one step each, timing.py computes waits,
tracking.py tracks their emails (opens and clicks per enrollment, for branches), report.py
counts who is where.
"""

# What other packages may import (tests/test_import_graph.py holds them to it).
__all__ = ["automations", "entry", "report", "runner", "timing", "tracking"]

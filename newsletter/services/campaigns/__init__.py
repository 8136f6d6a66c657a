"""Campaigns: compose (in four editors, or from the gallery), move through their statuses, send in batches,
report, resend to non-openers, A/B test subjects and bodies, translate into other languages."""

# What other packages may import (tests/test_import_graph.py holds them to it).
__all__ = ["ab_tests", "campaigns", "dispatch", "editors", "fields", "gallery", "layouts", "merge_fields", "reports",
           "resend", "send", "translations", "web_view"]

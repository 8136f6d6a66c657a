"""Transactional mail: API notifications, their templates, and the platform's own one-off emails (one ledger)."""

# What other packages may import (tests/test_import_graph.py holds them to it).
__all__ = ["audience_mail", "chunks", "mail_log", "notifications", "one_off", "system_mail", "templates"]

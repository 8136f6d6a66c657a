"""Transactional mail: API notifications, their templates, and the platform's own one-off emails."""

# What other packages may import (tests/test_import_graph.py holds them to it).
__all__ = ["audience_mail", "notifications", "system_mail", "templates"]

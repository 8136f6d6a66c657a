"""Webhooks: endpoints, the outbox of events, the guarded HTTP client that delivers them."""

# What other packages may import (tests/test_import_graph.py holds them to it).
__all__ = ["webhook_deliveries", "webhooks"]

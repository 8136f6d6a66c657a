"""Campaigns: compose, move through their statuses, send in batches, report."""

__all__ = ["campaigns", "context", "layouts", "recipients", "reports", "send"]

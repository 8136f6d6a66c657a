"""The delivery ledger: one row per recipient and campaign, its fences, and the send log that reads it."""

__all__ = ["ledger", "send_log"]

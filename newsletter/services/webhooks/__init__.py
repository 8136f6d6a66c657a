"""Webhooks: endpoints, the outbox of events, the guarded HTTP client that delivers them."""

__all__ = ["net_policy", "webhook_deliveries", "webhook_http", "webhooks"]

"""Transactional mail: API notifications, their templates, and the platform's own one-off emails."""

__all__ = ["audience_mail", "notifications", "system_mail", "templates"]

"""Accounts: admin users, passwords, the login guard, and API keys."""

__all__ = ["api_keys", "login_guard", "passwords", "users"]

"""Accounts: admin users, passwords, the login guard, and API keys."""

# What other packages may import (tests/test_import_graph.py holds them to it).
__all__ = ["api_keys", "login_guard", "passwords", "users"]

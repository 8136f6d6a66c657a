"""Helpers for tests that run real servers and processes."""

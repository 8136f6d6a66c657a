"""Engagement: open and click tracking."""

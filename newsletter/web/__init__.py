"""Blueprints by audience: health probes, sign-in, the admin UI (and later public, api)."""

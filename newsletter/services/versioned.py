"""A per-process copy of something small read from the database (the settings, the DKIM keys,
the sending servers) that senders consult on every batch, re-read when a save anywhere says so.

A save writes a new random token under the copy's Redis key (`announce`). Each process compares
its copy's token with Redis at most every CHECK_EVERY seconds (one GET) and re-reads when it
differs, so a change reaches every worker within about a second, without a restart. A copy is
also re-read every MAX_AGE seconds whatever Redis says (rows edited by hand, a Redis that lost
the key or is down). Copies are per process and per app: a forked worker never shares its
parent's Redis connection or copy.
"""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import redis
from flask import current_app

log = logging.getLogger(__name__)

T = TypeVar("T")
CHECK_EVERY = 1.0  # seconds between two looks at the version key in one process
MAX_AGE = 60.0  # seconds: re-read regardless


@dataclass
class _Slot(Generic[T]):
    client: redis.Redis
    lock: threading.Lock = field(default_factory=threading.Lock)
    value: T | None = None
    token: str | None = None  # the version key's value when `value` was read
    loaded_at: float = 0.0
    checked_at: float = 0.0


class Versioned(Generic[T]):
    """`get()` answers from this process's copy; `announce()` tells every process to re-read."""

    def __init__(self, name: str, version_key: str, load: Callable[[], T]) -> None:
        self.name, self.version_key, self.load = name, version_key, load
        self._slots: dict[tuple[int, int], _Slot[T]] = {}

    def _slot(self) -> _Slot[T]:
        # current_app is typed as the Flask app it stands for, so its proxy method is invisible to mypy.
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        key = (os.getpid(), id(app))
        if key not in self._slots:
            self._slots[key] = _Slot(redis.Redis.from_url(app.config["REDIS_URL"], socket_timeout=2,
                                                          socket_connect_timeout=2))
        return self._slots[key]

    @property
    def client(self) -> redis.Redis:
        """This process's Redis connection (for callers that announce more than the version)."""
        return self._slot().client

    def get(self, fresh: bool = False) -> T:
        """The copy; `fresh` re-reads it now whatever the version says."""
        slot = self._slot()
        now = time.monotonic()
        value = slot.value
        if not fresh and value is not None and now - slot.checked_at < CHECK_EVERY:
            return value
        with slot.lock:
            value = slot.value
            if not fresh and value is not None and now - slot.checked_at < CHECK_EVERY:
                return value  # another thread looked meanwhile
            token = self._token(slot)
            if fresh or value is None or token != slot.token or now - slot.loaded_at > MAX_AGE:
                value = slot.value = self.load()
                slot.token, slot.loaded_at = token, now
            slot.checked_at = now
            return value

    def _token(self, slot: _Slot[T]) -> str | None:
        try:
            raw = slot.client.get(self.version_key)
        except redis.RedisError as exc:  # keep the copy; MAX_AGE re-reads it
            log.warning("%s: cannot read %s (%s); re-reading every %.0f s", self.name, self.version_key, exc, MAX_AGE)
            return slot.token
        return (raw.decode() if isinstance(raw, bytes) else raw) or None

    def announce(self) -> None:
        """A new version for every process; this one re-reads at its next `get`. A Redis that is
        down is logged, not raised: the change is saved, and processes pick it up within MAX_AGE."""
        slot = self._slot()
        try:
            slot.client.set(self.version_key, uuid.uuid4().hex)
        except redis.RedisError as exc:
            log.warning("%s: saved, but could not notify other processes through Redis (%s)", self.name, exc)
        slot.value = None

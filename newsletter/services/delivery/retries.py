"""When a transient failure is tried again: one backoff for campaign deliveries and notifications."""
from __future__ import annotations

import random

from .. import settings


def retry_delay(attempts: int) -> float:
    """Exponential backoff with jitter: half the step fixed, half random."""
    config = settings.effective()
    step = min(config["SEND_RETRY_MAX"], config["SEND_RETRY_BASE"] * 2 ** max(0, attempts - 1))
    return step / 2 + random.uniform(0, step / 2)

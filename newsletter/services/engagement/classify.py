"""Human or machine: the one place that decides what an open or a click was.

Placeholder on the tracking-core branch: only the simplest rule (an event within a few seconds
of the message being built is a machine). The full rules (Apple MPP, scanners, bursts) replace
this file at merge; the interface below is what the rest of the code relies on.
"""
from __future__ import annotations

from dataclasses import dataclass

BURST_WINDOW = 10.0  # seconds
TOO_SOON = 5.0  # seconds after the build: no human opens a message that fast


@dataclass(frozen=True)
class Hit:
    kind: str  # "open" | "click"
    user_agent: str
    ip: str  # client address as the app sees it (after ProxyFix)
    at: float  # unix time of the request
    sent_at: float | None  # unix time the message was built (carried in the token), None if unknown
    burst_links: int = 1  # distinct links of this campaign the same client hit within BURST_WINDOW s, incl. this one
    accept: str = ""  # Accept header
    referer: str = ""


@dataclass(frozen=True)
class Verdict:
    machine: bool
    reason: str  # "" for human; short stable codes such as "apple_mpp", "scanner", "too_soon", "burst", "bot"


HUMAN = Verdict(False, "")


def classify(hit: Hit) -> Verdict:
    if hit.sent_at is not None and hit.at - hit.sent_at < TOO_SOON:
        return Verdict(True, "too_soon")
    return HUMAN

"""Subscribers' data kept out of error reports: addresses, tokens, passwords, message bodies.

`scrub` walks a whole Sentry event (message, exception values, breadcrumbs, extra, contexts,
request, tags...) and
- empties the value of any key that names a secret or a message body (password, token,
  authorization, cookie, api_key, html, text, body...), whatever its nesting;
- in every string, replaces email addresses, subscriber-link tokens (the log redaction's rule,
  newsletter/redaction.py), `token=`/`password=`-style values, bearer and basic credentials,
  API keys (`nl_...`), and the bound parameters SQLAlchemy prints in its errors (they hold
  addresses, rendered bodies and claim tokens).

It can only recognise what has a shape: a secret inside free text with no name next to it is
not found, which is why request bodies and local variables are never sent at all (sentry.py).
"""
from __future__ import annotations

import re
from typing import Any

from ..redaction import redact

FILTERED = "[Filtered]"
MAX_DEPTH = 20

_SECRET_KEY = re.compile(r"(?i)pass(word|wd)?|pwd|secret|token|auth|cookie|csrf|session|api[_-]?key|dsn|signature")
_BODY_KEYS = frozenset({"html", "text", "body", "body_html", "body_text", "subject", "content", "message_body"})

_STOP = r"\s@<>()\[\]{},;:\"'\\/"
_EMAIL = re.compile(rf"[^{_STOP}]+@(?:[^{_STOP}.]+\.)+[^{_STOP}.]+")
_CREDENTIALS = re.compile(r"(?i)\b(bearer|basic)\s+[^\s\"',;]+")
_API_KEY = re.compile(r"\bnl_[A-Za-z0-9_-]{16,}")  # services/accounts/api_keys.py: KEY_PREFIX + 43 characters
_NAMED_VALUE = re.compile(
    r"""(?ix)
    ((?:password|passwd|pwd|secret|token|api[_-]?key|authorization|cookie)\w*["']?\s*[:=]\s*)
    (?!(?:bearer|basic)\s)  # "Authorization: Bearer x": _CREDENTIALS has filtered x already
    ("[^"]*"|'[^']*'|[^\s,&;}\]"']+)
    """)
_SQL_PARAMETERS = re.compile(r"\[parameters: .*?(?=\n\(Background on this error|\Z)", re.S)


def scrub_text(text: str) -> str:
    if "[parameters: " in text:
        text = _SQL_PARAMETERS.sub(f"[parameters: {FILTERED}]", text)
    text = _EMAIL.sub("[email]", text)
    text = _CREDENTIALS.sub(rf"\1 {FILTERED}", text)
    text = _API_KEY.sub(FILTERED, text)
    text = _NAMED_VALUE.sub(rf"\1{FILTERED}", text)
    return redact(text)


def sensitive_key(key: object) -> bool:
    name = str(key).lower()
    return name in _BODY_KEYS or bool(_SECRET_KEY.search(name))


def scrub(value: Any, depth: int = 0) -> Any:
    """A copy of `value` (an event or any part of one) with the above removed."""
    if isinstance(value, str):
        return scrub_text(value)
    if depth >= MAX_DEPTH:
        return FILTERED if isinstance(value, dict | list | tuple) else value
    if isinstance(value, dict):
        return {scrub_text(k) if isinstance(k, str) else k:
                FILTERED if sensitive_key(k) and v not in (None, "", {}, []) else scrub(v, depth + 1)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item, depth + 1) for item in value]
    return value

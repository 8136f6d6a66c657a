"""Hard or soft: what a remote server's status code and words say about a failed delivery.

The enhanced status code decides first (RFC 3463): 5.x.x is permanent (hard), 4.x.x transient
(soft). Two conventions most bulk senders follow refine it: 5.2.2 "mailbox full" is soft (the
owner can empty it, and a later message may arrive), and a generic X.0.0 code says nothing, so
the words decide. Without an enhanced code the SMTP reply code decides the same way (552 is
"exceeded storage allocation": soft), then the words, then the caller's fallback (what the
DSN's Action or the MTA's bounce format implies).
"""
from __future__ import annotations

import re

HARD, SOFT = "hard", "soft"

# In free text only failure classes count: "2.0.13" there is more likely a version number.
_ENHANCED = re.compile(r"(?<![\d.])([45])\.(\d{1,3})\.(\d{1,3})(?![\d])")
_STATUS = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d])")
# A reply code as servers quote it: "550 5.1.1 ...", "550-Mailbox ...", "said: 552 ...", "#550".
_REPLY = re.compile(r"(?:^|[\s:#(\[])([45][0-5]\d)(?=[ -]|$)", re.M)

# Words of transient failures, checked before the permanent ones: "mailbox full" names a mailbox too.
_SOFT_WORDS = re.compile(
    r"quota|(?:mail ?box|mail ?folder|inbox)(?: is)? (?:full|over)|mailbox size|over ?(?:the )?(?:disk )?limit"
    r"|storage (?:allocation|space)|insufficient (?:system )?storage|(?:mail ?box|disk) space|space not enough"
    r"|exceeded (?:the )?(?:storage|maximum mailbox)|disk space"
    r"|temporar(?:y|ily)|try (?:again )?later|try again|deferred|greylist|delayed|will (?:be )?retr(?:y|ied)"
    r"|still (?:trying|being retried)|not yet been delivered|could not be delivered for \d+ (?:hours|days)"
    r"|warning:|delivery (?:attempts? )?(?:will )?continue",
    re.I)
_HARD_WORDS = re.compile(
    r"user unknown|unknown user|unknown (?:local[- ]part|recipient|address|mailbox)|no such (?:user|mailbox|"
    r"recipient|account|address|domain|person)|(?:user|mailbox|account|address|recipient)"
    r"(?: name)? (?:does not|doesn'?t) exist|does not exist|not (?:a )?valid (?:recipient|mailbox|user|address)"
    r"|invalid (?:recipient|mailbox|user|address)|recipient (?:address )?rejected|address rejected"
    r"|mailbox (?:unavailable|not found|disabled|inactive)|account (?:has been )?(?:disabled|deactivated|closed|"
    r"suspended|expired)|unrouteable|no mailbox|not our customer|host (?:or domain name )?not found"
    r"|domain (?:not found|does not exist)|name or service not known|unknown host|permanent(?:ly)? (?:error|fail)"
    r"|not listed in|no longer (?:in use|active|valid)|unable to deliver|undeliverable|refused|rejected"
    r"|blocked|denied|spam|blacklist|blocklist",
    re.I)


def enhanced_code(text: str, status_field: bool = False) -> str:
    """The first enhanced failure code ("5.1.1") in `text`, or "" (a DSN's Status field may say 2.x.x)."""
    match = (_STATUS if status_field else _ENHANCED).search(text or "")
    return ".".join(match.groups()) if match else ""


def reply_code(text: str) -> str:
    """The first SMTP reply code ("550") in `text`, or ""."""
    match = _REPLY.search(text or "")
    return match.group(1) if match else ""


def best_code(status: str, diagnostic: str) -> str:
    """The most specific code a DSN gives: its Status field, unless that is a generic X.0.0 (or
    missing) and the diagnostic quotes a more precise one of the same class."""
    code = enhanced_code(status, status_field=True)
    quoted = enhanced_code(diagnostic)
    if quoted and (not code or (code.endswith(".0.0") and quoted[0] == code[0])):
        code = quoted
    return code or reply_code(status) or reply_code(diagnostic)


def _by_words(text: str) -> str:
    if _SOFT_WORDS.search(text or ""):
        return SOFT
    if _HARD_WORDS.search(text or ""):
        return HARD
    return ""


def classify(code: str, diagnostic: str, fallback: str = HARD) -> str:
    """HARD or SOFT for one failed recipient ("" for a 2.x.x success code)."""
    if "." in code:
        klass, subject, detail = code.split(".")
        if klass == "2":
            return ""
        if klass == "4" or (subject, detail) == ("2", "2"):
            return SOFT
        if (subject, detail) != ("0", "0"):
            return HARD
        return _by_words(diagnostic) or (HARD if klass == "5" else fallback)
    if code:
        if code.startswith("2"):
            return ""
        if code.startswith("4") or code == "552":
            return SOFT
        return _by_words(diagnostic) or HARD
    return _by_words(diagnostic) or fallback

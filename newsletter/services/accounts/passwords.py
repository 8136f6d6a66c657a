"""Password strength: the rules every password someone sets must pass (admin, reset, CLI).

Length alone lets `aaaaaaaaaa` and `password123` in. Guessing attacks try the passwords
people pick most often first, so we refuse those outright, and the shapes that are common
but no list spells out: one character repeated, a short pattern repeated, a run along the
alphabet, the digits or a keyboard row, a common word with digits or symbols around it, and
the user's own email or name.

common-passwords.txt.gz is the list Django ships (django/contrib/auth, BSD licence): 19,640
passwords from Royce Williams' compilation of leaked-password corpora, one per line, lower case.
"""
from __future__ import annotations

import gzip
import re
import string
from functools import cache
from pathlib import Path

from ..messages import Message

MIN_LENGTH = 10
MAX_LENGTH = 200  # scrypt hashes whatever it is given; a megabyte "password" is a denial of service
MIN_DISTINCT = 5  # "abababababab", "1212121212aa"
LIST_PATH = Path(__file__).with_name("common-passwords.txt.gz")
# Runs a person types without thinking; checked forwards and backwards.
SEQUENCES = (string.ascii_lowercase, string.digits + "0", "qwertyuiop", "asdfghjkl", "zxcvbnm",
             "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p", "qazwsxedcrfvtgbyhnujmikolp")
# A word with this around it is still the word: "Password2024!", "!!dragon!!", "monkey 1234".
_DECORATION = re.compile(r"^[\d\W_]*(.*?)[\d\W_]*$")
_WORDS = re.compile(r"[^\W\d_]{4,}")
HINT = f"At least {MIN_LENGTH} characters; not a common password, a keyboard pattern or your name or email."


@cache
def common_passwords() -> frozenset[str]:
    with gzip.open(LIST_PATH, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


def _is_run(text: str) -> bool:
    """`text` is a stretch of one of SEQUENCES, possibly wrapping around and going on."""
    return any(text in (seq * (len(text) // len(seq) + 2)) or text in (seq[::-1] * (len(text) // len(seq) + 2))
               for seq in SEQUENCES)


def _is_repeated(text: str) -> bool:
    """`text` is a shorter unit over and over ("abcabcabc", "passwordpassword")."""
    return any(len(text) % size == 0 and text == text[:size] * (len(text) // size)
               for size in range(1, len(text) // 2 + 1))


def _personal_words(email: str | None, name: str | None) -> set[str]:
    local = (email or "").partition("@")[0].lower()
    words = set(_WORDS.findall(local)) | set(_WORDS.findall((name or "").lower()))
    if len(local) >= 4:
        words.add(local)
    return words


def problem(password: str, email: str | None = "", name: str | None = "") -> Message | None:
    """Why `password` is too weak for the account `email`/`name`, or None when it will do."""
    if len(password) < MIN_LENGTH:
        return Message("Password must be at least %(limit)s characters.", limit=MIN_LENGTH)
    if len(password) > MAX_LENGTH:
        return Message("Password must be at most %(limit)s characters.", limit=MAX_LENGTH)
    lowered = password.lower()
    compact = re.sub(r"\s+", "", lowered)
    if len(set(lowered)) < MIN_DISTINCT or _is_repeated(compact) or _is_run(compact):
        return Message("This password is a repeated or sequential pattern, which is guessed first. Choose another.")
    decorated = _DECORATION.match(lowered)
    core = decorated.group(1) if decorated else lowered
    if lowered in common_passwords() or compact in common_passwords() or (len(core) >= 4 and (
            core in common_passwords() or _is_run(core) or _is_repeated(core))):
        return Message("This is one of the most common passwords, which attackers try first. Choose another.")
    if any(word in lowered for word in _personal_words(email, name)):
        return Message("The password must not contain your email address or name.")
    return None

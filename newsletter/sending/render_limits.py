"""Render limits: the time budget, and what an operation would cost before it is allowed to run.

A template may only create values that fit in one rendered part (MAX_OUTPUT characters), so
every operation that can multiply a value is sized *before* Python builds the result: `*`,
`**`, `+`, `%`, str.format, the growing str methods and filters. Containers are sized by what
they would print as (their items, counted once per reference), so `[s] * 1000` with a long
`s` is refused although the list itself is small.
"""
from __future__ import annotations

import functools
import re
import string
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jinja2.exceptions import SecurityError
from jinja2.utils import Namespace

MAX_OUTPUT = 2 * 1024 * 1024  # characters of one rendered part (and of any value made on the way)
# CPU time of one render, counted on the rendering thread's own clock: a loaded machine makes a
# render wait for the CPU, which wall time would count against the template (under load 15-30 a
# plain welcome subject once took longer than 2 s of wall time and its automation email was lost).
MAX_SECONDS = 2.0
clock = time.thread_time  # the clock every deadline check reads
MAX_INT_BITS = 65_536         # an integer of ~20,000 digits: far past any use, cheap to compute
MAX_DEPTH = 32                # nesting of lists/dicts a template may build or print


class LimitExceeded(SecurityError):
    """A render went past a cap; the message says which cap, for the marketer."""


FOLD_MAX = 64 * 1024          # largest constant Jinja may fold into compiled code (outside a render)


class _Budget(threading.local):
    """Limits of the render under way in this thread.

    Outside a render the only template code that runs is Jinja folding constants at compile
    time (`{{ 'x'|center(9) }}` becomes a literal): that gets no deadline, but a small size
    cap, so a short source cannot compile into megabytes of literals; past it, Jinja leaves
    the expression to the render, where the real caps apply.
    """
    deadline: float = float("inf")
    max_size: int = FOLD_MAX

    def start(self) -> None:
        self.deadline, self.max_size = clock() + MAX_SECONDS, MAX_OUTPUT

    def expired(self) -> bool:
        return clock() > self.deadline

    def stop(self) -> None:
        self.deadline, self.max_size = float("inf"), FOLD_MAX


budget = _Budget()


def check_time() -> None:
    if budget.expired():
        raise too_slow()


def too_slow() -> LimitExceeded:
    return LimitExceeded(f"it took longer than {MAX_SECONDS:g} s")


def refuse_if_large(size: int | None, what: str) -> None:
    if size is not None and size > budget.max_size:
        raise LimitExceeded(f"{what} would make {size:,} characters, larger than the "
                            f"{budget.max_size // 1024} KB limit")


def size_of(value: Any) -> int:
    """Characters `value` stands for as text; counting stops soon after MAX_OUTPUT."""
    if isinstance(value, str):
        return len(value)
    return _deep_size(value, 0)


def _deep_size(value: Any, depth: int) -> int:
    if isinstance(value, (str, bytes, bytearray)):
        return len(value)
    if isinstance(value, int):
        return value.bit_length() // 3 + 1
    if isinstance(value, Namespace):  # its attributes live in a name-mangled dict
        value = object.__getattribute__(value, "_Namespace__attrs")
    if isinstance(value, Mapping):
        items: Iterable[Any] = (x for pair in value.items() for x in pair)
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    else:
        return 1  # numbers, None, generators, macros, Undefined: short as text
    if depth >= MAX_DEPTH:
        raise LimitExceeded(f"values nested more than {MAX_DEPTH} levels deep are not allowed")
    total = 4 * len(value)  # an item prints with at least a separator and quotes: "'a', "
    for item in items:
        total += _deep_size(item, depth + 1)
        if total > MAX_OUTPUT:  # a shared item counts once per reference: stop early, it is refused
            break
    return total


def collect(iterable: Iterator[Any], what: str) -> list[Any]:
    """A lazy sequence (map, select...) made into a list, refused as soon as it grows too large."""
    items, total = [], 0
    for item in iterable:
        check_time()
        total += 1 + size_of(item)
        refuse_if_large(total, what)
        items.append(item)
    return items


# Operators ------------------------------------------------------------------------------------

_SEQUENCE = (str, bytes, list, tuple)


def binop_size(operator: str, left: Any, right: Any) -> int | None:
    """Size of `left <operator> right` if it can grow past the caps, else None; raises for huge ints."""
    if operator == "*":
        if isinstance(left, int) and isinstance(right, int):
            _refuse_int_bits(left.bit_length() + right.bit_length())
        elif isinstance(left, _SEQUENCE) and isinstance(right, int):
            return size_of(left) * max(right, 0)
        elif isinstance(right, _SEQUENCE) and isinstance(left, int):
            return size_of(right) * max(left, 0)
    elif operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            _refuse_int_bits(left.bit_length() * right)
    elif operator == "+":
        if isinstance(left, _SEQUENCE) and isinstance(right, _SEQUENCE):
            return size_of(left) + size_of(right)
    elif operator == "%" and isinstance(left, str):
        return percent_size(left, right)
    return None


def _refuse_int_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise LimitExceeded(f"a number of about {bits * 3 // 10:,} digits is larger than allowed")


# `%` specs: %(name)flags width .precision length type
_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d*)(?:\.(\*|\d*))?[hlL]?(.)", re.S)


def _numbers(values: Iterable[Any]) -> int:
    return sum(abs(v) for v in values if isinstance(v, int))


@functools.lru_cache(maxsize=512)  # the same few format strings, once per recipient
def _percent_fields(template: str) -> tuple[int, int, bool]:
    """(fields, total of the written widths and precisions, whether one is `*`) of a `%` template."""
    fields, widths, star = 0, 0, False
    for width, precision, _kind in _PERCENT.findall(template):
        fields += 1
        for number in (width, precision):
            star = star or number == "*"
            widths += int(number) if number.isdigit() else 0
    return fields, widths, star


def percent_size(template: str, values: Any) -> int:
    """An upper bound for `template % values` (and the `format` filter): widths, precisions, values."""
    fields, widths, star = _percent_fields(template)
    args = list(values.values()) if isinstance(values, Mapping) else (
        list(values) if isinstance(values, tuple) else [values])
    largest = max([size_of(a) for a in args], default=0)
    return len(template) + fields * largest + widths + (fields * _numbers(args) if star else 0)


@functools.lru_cache(maxsize=512)
def _format_fields(template: str) -> tuple[int, int, bool]:
    """(fields, total of the written widths, whether a width is nested) of a str.format template."""
    try:
        specs = [spec for _text, name, spec, _conv in string.Formatter().parse(template) if name is not None]
    except ValueError:
        return 0, 0, False  # malformed: str.format raises its own error
    widths = sum(int(n) for spec in specs for n in re.findall(r"\d+", spec or ""))
    return len(specs), widths, any("{" in (spec or "") for spec in specs)


def format_size(template: str, args: tuple, kwargs: Mapping[str, Any]) -> int:
    """An upper bound for `template.format(*args, **kwargs)`: each field may repeat the largest value."""
    fields, widths, nested = _format_fields(template)
    values = [*args, *kwargs.values()]
    largest = max([size_of(v) for v in values], default=0)
    return len(template) + fields * largest + widths + (fields * _numbers(values) if nested else 0)


# str/bytes/int methods that can grow their owner past its size ------------------------------------

def _width(owner: Any, width: int, *_: Any) -> int:
    return max(len(owner), width)


def _expandtabs(owner: Any, tabsize: int = 8) -> int:
    return len(owner) + owner.count("\t" if isinstance(owner, str) else b"\t") * max(tabsize, 0)


def replace_size(owner: Any, old: Any, new: Any, count: int | None = -1) -> int:
    found = owner.count(old) if len(old) else len(owner) + 1
    if count is not None and count >= 0:
        found = min(found, count)
    return len(owner) + found * max(len(new) - len(old), 0)


def join_size(separator: Any, items: list[Any]) -> int:
    return sum(size_of(i) for i in items) + max(len(items) - 1, 0) * len(separator)


def _translate(owner: Any, table: Any, *_: Any) -> int:
    values = table.values() if isinstance(table, Mapping) else ()
    return len(owner) * max([1, *(len(v) for v in values if isinstance(v, (str, bytes)))])


def _to_bytes(owner: int, length: int = 1, *_: Any, **__: Any) -> int:
    return length


METHOD_SIZES: dict[str, Callable[..., int]] = {
    "center": _width, "ljust": _width, "rjust": _width, "zfill": _width,
    "expandtabs": _expandtabs, "replace": replace_size, "translate": _translate, "to_bytes": _to_bytes,
}

"""Charts as inline SVG drawn on the server: no script, no external request, readable on a phone.

The x axis is laid out in percentages and the y axis in pixels, so the chart fills any width
while its text stays at its real size (a scaled viewBox would shrink the labels to nothing at
390 px). Colours come from Pico's variables through the `chart-*` classes in static/app.css.
Each chart is a <figure>: the SVG has role="img" with a <title> summing it up, and a
<details> table holds every number for screen readers and for copying.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from babel.dates import format_skeleton
from flask_babel import get_locale
from flask_babel import gettext as _
from markupsafe import Markup, escape

from ...services import languages

TOP, BOTTOM = 16, 22  # room for the top tick's label, and for the x labels under the axis
MAX_X_LABELS = 5  # about 60 px each at 390 px wide
MAX_TABLE_ROWS = 31  # past this, rows where nothing happened are left out of the table
_ids = itertools.count(1)


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float]
    tone: str = "primary"  # primary, danger, success or muted: a chart-* class


def compact(value: float) -> str:
    """1,234 -> 1.2k: tick labels stay short on a phone."""
    for size, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}".rstrip("0").rstrip(".") + suffix
    return f"{value:g}"


def nice_ticks(peak: float, count: int = 3) -> list[float]:
    """0 and a few round steps (1, 2, 2.5 or 5 × 10ⁿ) up to at least `peak`."""
    raw = max(peak, 1) / count
    power = 10 ** math.floor(math.log10(raw))
    steps = (1, 2, 2.5, 5, 10) if power >= 10 else (1, 2, 5, 10)  # counts: no 2.5 emails
    step = max(next(m * power for m in steps if m * power >= raw), 1)
    return [i * step for i in range(math.ceil(peak / step) + 1 if peak else 2)] or [0, step]


def _x_label_indexes(n: int) -> list[int]:
    """The first, the last and a few evenly spaced between (the last is flush right: it needs the room)."""
    if n <= MAX_X_LABELS:
        return list(range(n))
    gaps = MAX_X_LABELS - 1
    return sorted({round(i * (n - 1) / gaps) for i in range(gaps + 1)})


def _anchor(index: int, n: int) -> str:
    return "start" if index == 0 and n > 1 else "end" if index == n - 1 and n > 1 else "middle"


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _in_sentence(name: str) -> str:
    """A series name inside a tooltip ("10:00: 120 sent"): lower case in English; other languages keep
    its capitals (German nouns: "120 Abonnenten", not "120 abonnenten")."""
    locale = get_locale()
    return name.lower() if locale is None or locale.language == "en" else name


def _summary(title: str, labels: Sequence[str], series: Sequence[Series]) -> str:
    parts = []
    for s in series:
        total = sum(s.values)
        peak = max(range(len(s.values)), key=lambda i: s.values[i]) if s.values else 0
        if total:
            parts.append(_("%(name)s: %(total)s in total, most %(peak)s at %(label)s", name=s.name,
                           total=_number(total), peak=_number(s.values[peak]), label=labels[peak]))
        else:
            parts.append(_("%(name)s: %(total)s in total", name=s.name, total=_number(total)))
    return f"{title}. " + "; ".join(parts) + "."


def _grid(ticks: list[float], height: int) -> list[str]:
    """Horizontal grid lines with their values sitting on top of them at the left edge."""
    plot = height - TOP - BOTTOM
    out = []
    for tick in ticks:
        y = round(TOP + plot - tick / ticks[-1] * plot) + 0.5  # +0.5: a crisp one-pixel line
        css = "chart-axis" if tick == 0 else "chart-grid"
        out.append(f'<line class="{css}" x1="0" x2="100%" y1="{y}" y2="{y}"/>')
        if tick:
            out.append(f'<text class="chart-tick" x="0" y="{y - 4}">{compact(tick)}</text>')
    return out


def _x_labels(labels: Sequence[str], height: int, centred: bool) -> list[str]:
    n = len(labels)
    out = []
    for i in _x_label_indexes(n):
        anchor = _anchor(i, n)
        if centred:  # bars: under the bar's middle, or flush with the first/last bar's edge
            x = (i + {"start": 0, "middle": 0.5, "end": 1}[anchor]) / n * 100
        else:  # points: on the point itself
            x = i / (n - 1) * 100 if n > 1 else 50
        out.append(f'<text class="chart-label" x="{x:.3f}%" y="{height - 6}" text-anchor="{anchor}">'
                   f"{escape(labels[i])}</text>")
    return out


def _table(labels: Sequence[str], series: Sequence[Series], label_header: str) -> str:
    rows = list(range(len(labels)))
    note = ""
    if len(rows) > MAX_TABLE_ROWS:
        rows = [i for i in rows if any(s.values[i] for s in series)]
        left_out = _("Rows with nothing to count are left out.")  # outside the f-string: extraction finds it
        note = f'<p class="muted small-text">{escape(left_out)}</p>'
    head = "".join(f'<th scope="col" class="num">{escape(s.name)}</th>' for s in series)
    body = "".join(
        f'<tr><th scope="row">{escape(labels[i])}</th>'
        + "".join(f'<td class="num">{_number(s.values[i])}</td>' for s in series) + "</tr>" for i in rows)
    summary = escape(_("Show the numbers"))
    return (f'<details class="chart-data"><summary>{summary}</summary>{note}<div class="table-wrap">'
            f'<table class="striped"><thead><tr><th scope="col">{escape(label_header)}</th>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div></details>")


def _figure(kind: str, title: str, labels: Sequence[str], series: Sequence[Series], height: int,
            body: list[str], label_header: str, full_labels: Sequence[str], note: str = "") -> Markup:
    chart_id = f"chart-{next(_ids)}"
    legend = "".join(f'<span class="chart-key chart-{s.tone}">{escape(s.name)}</span>' for s in series)
    if note:
        legend = f'<span class="chart-note">{escape(note)}</span>' + legend
    svg = (f'<svg class="chart-svg chart-{kind}" width="100%" height="{height}" role="img" '
           f'aria-labelledby="{chart_id}-title" xmlns="http://www.w3.org/2000/svg">'
           f'<title id="{chart_id}-title">{escape(_summary(title, full_labels, series))}</title>'
           + "".join(body) + "</svg>")
    return Markup(f'<figure class="chart" id="{chart_id}"><figcaption><strong>{escape(title)}</strong>'
                  f'<span class="chart-legend">{legend}</span></figcaption>{svg}'
                  f"{_table(full_labels, series, label_header)}</figure>")


def _empty(title: str, message: str) -> Markup:
    message = message or _("Nothing to show yet.")
    return Markup(f'<figure class="chart chart-empty"><figcaption><strong>{escape(title)}</strong></figcaption>'
                  f'<p class="muted">{escape(message)}</p></figure>')


def bar_chart(labels: Sequence[str], series: Sequence[Series], *, title: str, empty: str = "",
              height: int = 180, full_labels: Sequence[str] | None = None, label_header: str = "",
              note: str = "", grouped: bool = False) -> Markup:
    """Bars per label, the series stacked bottom to top (e.g. sent, then failed on top), or side by
    side with `grouped` (for values that do not add up, such as two rates)."""
    if not labels or not any(v for s in series for v in s.values):
        return _empty(title, empty)
    n = len(labels)
    full = list(full_labels or labels)
    if grouped:
        ticks = nice_ticks(max(max(s.values) for s in series))
    else:
        ticks = nice_ticks(max(sum(s.values[i] for s in series) for i in range(n)))
    plot = height - TOP - BOTTOM
    slot = 100 / n
    width = min(slot * 0.72, 9)  # a handful of bars stay bars, not blocks (grouped: shared)
    step = width / len(series) if grouped else 0
    body = _grid(ticks, height)
    for i in range(n):
        x = i * slot + (slot - width) / 2
        base: float = TOP + plot
        for j, s in enumerate(series):
            value = s.values[i]
            if not value:
                continue
            h = max(value / ticks[-1] * plot, 1.5)  # a single email still shows
            if grouped:
                base = TOP + plot - h
                x_bar, w_bar = x + j * step, step * 0.9
            else:
                base -= h
                x_bar, w_bar = x, width
            body.append(f'<rect class="bar chart-{s.tone}" x="{x_bar:.3f}%" y="{base:.2f}" width="{w_bar:.3f}%" '
                        f'height="{h:.2f}"><title>{escape(full[i])}: {_number(value)} {escape(_in_sentence(s.name))}'
                        f"</title></rect>")
    body += _x_labels(labels, height, centred=True)
    return _figure("bars", title, labels, series, height, body, label_header or _("When"), full, note)


def line_chart(labels: Sequence[str], series: Sequence[Series], *, title: str, empty: str = "",
               height: int = 180, full_labels: Sequence[str] | None = None, label_header: str = "",
               area: bool = True, note: str = "") -> Markup:
    """One line per series, with dots while there are few enough points to tell apart."""
    if not labels or not any(v for s in series for v in s.values):
        return _empty(title, empty)
    n = len(labels)
    full = list(full_labels or labels)
    ticks = nice_ticks(max(max(s.values) for s in series))
    plot = height - TOP - BOTTOM
    body = _grid(ticks, height)

    def y(value: float) -> float:
        return plot - value / ticks[-1] * plot

    for s in series:
        unit = escape(_in_sentence(s.name))
        xs = [i / (n - 1) * 1000 if n > 1 else 500 for i in range(n)]
        points = " ".join(f"{x:.1f},{y(v):.2f}" for x, v in zip(xs, s.values, strict=False))
        # The line lives in a stretched inner SVG (0-1000 across); its stroke keeps its width.
        inner = [f'<svg x="0" y="{TOP}" width="100%" height="{plot}" viewBox="0 0 1000 {plot}" '
                 f'preserveAspectRatio="none" overflow="visible">']
        if area:
            inner.append(f'<polygon class="area chart-{s.tone}" '
                         f'points="{xs[0]:.1f},{plot} {points} {xs[-1]:.1f},{plot}"/>')
        inner.append(f'<polyline class="line chart-{s.tone}" points="{points}" vector-effect="non-scaling-stroke"/>')
        body += inner + ["</svg>"]
        if n <= 40:
            for i, value in enumerate(s.values):
                cx = i / (n - 1) * 100 if n > 1 else 50
                body.append(f'<circle class="dot chart-{s.tone}" cx="{cx:.3f}%" cy="{TOP + y(value):.2f}" r="3">'
                            f"<title>{escape(full[i])}: {_number(value)} {unit}</title></circle>")
    body += _x_labels(labels, height, centred=False)
    return _figure("lines", title, labels, series, height, body, label_header or _("When"), full, note)


# Time axes ------------------------------------------------------------------------------------

def time_labels(starts: Sequence[datetime], unit: str) -> tuple[list[str], list[str]]:
    """Short labels for the axis and full ones (UTC) for tooltips and the table; days in the page's
    language ("Dec 7", "7. Dez.")."""
    if unit == "day":
        locale = get_locale() or languages.DEFAULT
        return ([format_skeleton("MMMd", m, locale=locale) for m in starts],
                [format_skeleton("yMMMEd", m, locale=locale) for m in starts])
    spans_days = len({m.date() for m in starts}) > 1
    short = [f"{m:%H:%M}" for m in starts]
    return short, [f"{m:%Y-%m-%d %H:%M} UTC" if spans_days or unit == "minute" else f"{m:%H:%M} UTC" for m in starts]


def timeline_chart(line, series: Sequence[tuple[str, str, str]], *, title: str, empty: str,
                   kind: str = "bars", height: int = 180, note: str = "") -> Markup:
    """A chart of a reports.Timeline: `series` lists (key in the timeline, name, tone)."""
    short, full = time_labels(line.starts, line.unit)
    drawn = [Series(name, line.series[key], tone) for key, name, tone in series]
    header = _("Day (UTC)") if line.unit == "day" else _("Time (UTC)")
    draw = line_chart if kind == "line" else bar_chart
    return draw(short, drawn, title=title, empty=empty, height=height, full_labels=full, label_header=header,
                note=note)

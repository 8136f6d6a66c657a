"""Writing a bench run down: the JSON file, a row in results/README.md, the chart, the profile summary."""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

VARIANTS = ("limit", "baseline", "platform")
README_HEADER = """# Send bench results

One row per `make bench` run (bench/send_bench.py); the JSON file named in the row has every
figure, the PNG the chart. msgs/s = N / (time from the first publish until the run is done).

| date | commit | N | limit msgs/s | baseline msgs/s | platform msgs/s | platform/baseline | platform/limit | Redis peak MB (baseline / platform) | platform first email s | platform send call ms | platform knobs | notes |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
"""  # noqa: E501  (a Markdown table row is one line)


def ratio(a, b) -> float | None:
    return round(a / b, 4) if a and b else None


def write_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n")


def append_readme(path: Path, payload: dict, json_name: str) -> None:
    if not path.exists():
        path.write_text(README_HEADER)
    rows = []
    for n in payload["n"]:
        key = str(n)
        got = {v: payload.get(v, {}).get("by_n", {}).get(key, {}) for v in VARIANTS}
        rate = {v: got[v].get("msgs_per_s") if not got[v].get("skipped") else None for v in VARIANTS}
        notes = [f"[{json_name}]({json_name})"]
        if payload.get("tag"):
            notes.append(payload["tag"])
        for v in VARIANTS:
            if got[v].get("skipped"):
                notes.append(f"{v} skipped: {got[v].get('reason', '')}")
            elif got[v].get("error"):
                notes.append(f"{v}: {got[v]['error'][:120]}")
        plat = got["platform"]
        knobs = plat.get("knobs") or {}
        knob_text = ", ".join(f"{k}={v}" for k, v in knobs.items()) + (
            f", concurrency={plat.get('concurrency')}" if plat else "")

        def fmt(x: float | None) -> str:
            return "–" if x is None else (f"{x:,.0f}" if x >= 100 else f"{x:.2f}")

        rows.append("| " + " | ".join([
            payload["date"], payload["commit"] + ("+dirty" if payload.get("dirty") else ""), f"{n:,}",
            fmt(rate["limit"]), fmt(rate["baseline"]), fmt(rate["platform"]),
            fmt(ratio(rate["platform"], rate["baseline"])), fmt(ratio(rate["platform"], rate["limit"])),
            f"{got['baseline'].get('redis_peak_mb', '–')} / {plat.get('redis_peak_mb', '–')}",
            str(plat.get("time_to_first_email_s", "–")),
            f"{plat['send_call_latency_s'] * 1000:.1f}" if plat.get("send_call_latency_s") is not None else "–",
            knob_text.strip(", ") or "–", "; ".join(notes).replace("|", "/")]) + " |")
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("\n".join(rows) + "\n")


def chart(path: Path, payload: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = payload["n"]
    fig, (bars, lines) = plt.subplots(1, 2, figsize=(13, 5.2))
    width = 0.8 / len(VARIANTS)
    colours = {"limit": "#868e96", "baseline": "#e8590c", "platform": "#1971c2"}
    drawn_values = []
    for i, v in enumerate(VARIANTS):
        for j, n in enumerate(ns):
            r = payload.get(v, {}).get("by_n", {}).get(str(n))
            x = j + (i - 1) * width
            value = None if r is None or r.get("skipped") else r.get("msgs_per_s")
            if value:
                bars.bar([x], [value], width, label=v if j == 0 or not bars.get_legend_handles_labels()[1].count(v)
                         else None, color=colours[v])
                bars.annotate(f"{value:,.0f}", (x, value), ha="center", va="bottom", fontsize=8)
                drawn_values.append(value)
            else:
                why = "capped" if r and r.get("skipped") else "not run"
                bars.annotate(why, (x, 1.3), ha="center", va="bottom", fontsize=8, rotation=90, color=colours[v])
    bars.set_yscale("log")
    bars.set_ylim(1, max(drawn_values or [10]) * 3)
    bars.set_xlim(-0.6, len(ns) - 0.4)
    bars.set_xticks(range(len(ns)), [f"N = {n:,}" for n in ns])
    bars.set_ylabel("messages per second (log scale)")
    bars.set_title("Throughput into smtp-sink")
    bars.legend()
    for v, style in (("platform", "-"), ("baseline", "--")):
        for n in ns:
            r = payload.get(v, {}).get("by_n", {}).get(str(n), {})
            if r.get("timeline"):
                ts, cs = zip(*r["timeline"], strict=True)
                lines.plot(ts, cs, style, label=f"{v} N={n:,}")
    lines.set_xlabel("seconds since the send call")
    lines.set_ylabel("messages received by smtp-sink")
    lines.set_title("Messages delivered over time")
    lines.grid(alpha=0.3)
    lines.legend(fontsize=8)
    fig.suptitle(f"Send bench {payload['date']} @ {payload['commit']} — {payload['machine'].get('nproc')} cores, "
                 f"concurrency {payload.get('concurrency')}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _short(frame: str) -> str:
    frame = re.sub(r"\(/[^)]*?/site-packages/", "(", frame)
    return re.sub(r"\(/work/main/", "(", frame)


CATEGORIES = [  # by the leaf frame's module: where the samples were spent
    ("pool child idle: waiting for a task", ("_recv (billiard/connection",)),
    ("worker main process event loop (idle)", ("_epoll.poll (kombu",)),
    ("PostgreSQL driver (psycopg: send/wait)", ("(psycopg/", "(psycopg_binary/")),
    ("SQLAlchemy (compile, ORM)", ("(sqlalchemy/",)),
    ("SMTP client and sockets", ("(smtplib.py", "(socket.py", "(ssl.py")),
    ("Redis client", ("(redis/",)),
    ("Jinja2 / MarkupSafe (render)", ("(jinja2/", "(markupsafe/")),
    ("itsdangerous (signed links)", ("(itsdangerous/", "(hmac.py", "(hashlib", "(base64.py")),
    ("Celery / kombu / billiard", ("(celery/", "(kombu/", "(billiard/", "(vine/")),
    ("newsletter (our code)", ("(newsletter/",)),
    ("stdlib email helpers", ("(email/",)),
]


def _category(frame: str) -> str:
    for name, needles in CATEGORIES:
        if any(needle in frame for needle in needles):
            return name
    return "other"


def shrink_raw(raw: Path) -> None:
    """py-spy repeats each process' full command line on every stack: keep just `process <pid>`."""
    text = raw.read_text(errors="replace")
    raw.write_text(re.sub(r'(process \d+):"[^"]*"', r"\1", text))


def profile_summary(raw: Path, top: int = 20) -> dict:
    """From py-spy's raw (collapsed) output: top functions by own samples, our functions by
    inclusive samples, samples by library, and the split between the main process and the pool."""
    own, inclusive, cats, procs, total = Counter(), Counter(), Counter(), Counter(), 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        parts = stack.split(";")
        depth = sum(1 for f in parts if f.startswith("process "))
        frames = [_short(f) for f in parts if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        n = int(count)
        total += n
        procs["pool children" if depth > 1 else "worker main process"] += n
        own[frames[-1]] += n
        cats[_category(frames[-1])] += n
        for f in set(frames):
            if "(newsletter/" in f:
                inclusive[f] += n

    def pct(c: int) -> float:
        return round(100 * c / total, 1) if total else 0

    return {"samples": total,
            "own": [(f, pct(c)) for f, c in own.most_common(top)],
            "inclusive": [(f, pct(c)) for f, c in inclusive.most_common(top)],
            "categories": [(k, pct(c)) for k, c in cats.most_common()],
            "processes": [(k, pct(c)) for k, c in procs.most_common()]}


def profile_markdown(summaries: dict[str, dict], files: list[str]) -> str:
    out = []
    for name, s in summaries.items():
        out.append(f"**{name}** ({s['samples']} samples; "
                   + ", ".join(f"{k} {p}%" for k, p in s["processes"]) + ")\n")
        out.append("| % of samples | spent in (leaf frame's library) |\n|---|---|")
        out += [f"| {p} | {k} |" for k, p in s["categories"]]
        out.append("\n| own % | function (leaf) | | inclusive % | our function (newsletter/) |\n|---|---|---|---|---|")
        rows = max(len(s["own"]), len(s["inclusive"]))
        def pad(xs: list, rows: int = rows) -> list:
            return xs + [("", "")] * (rows - len(xs))

        for (f1, p1), (f2, p2) in zip(pad(s["own"]), pad(s["inclusive"]), strict=True):
            out.append(f"| {p1} | {'`' + f1 + '`' if f1 else ''} | | {p2} | {'`' + f2 + '`' if f2 else ''} |")
        out.append("")
    out.append("Files: " + ", ".join(f"`results/{Path(f).name}`" for f in files))
    return "\n".join(out)


def figures_markdown(payload: dict, json_name: str) -> str:
    """The "Latest figures" section of bench/README.md, from one run's payload."""
    dirty = (f" (with uncommitted application changes, fingerprint {payload.get('app_diff_sha1')})"
             if payload.get("dirty") else "")
    head = (f"Run `{payload.get('command', '')}` on {payload['date']} at commit `{payload['commit']}`"
            f"{dirty}"
            f"; {payload['machine'].get('nproc')} cores ({payload['machine'].get('cpu_model')}), "
            f"{payload['machine'].get('memory_gb')} GB; worker concurrency {payload.get('concurrency')} "
            f"({payload.get('pool')}); message {payload.get('message', {}).get('bytes')} bytes. "
            f"Files: `results/{json_name}`, `results/{Path(json_name).with_suffix('.png').name}`.\n")
    rows = ["| N | variant | msgs/s | steady msgs/s | first email s | send call s | Redis peak MB | worker RSS peak MB "
            "| CPU s / 1,000 msgs (by group) | PostgreSQL active s | other load on the machine (CPU s) |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for n in payload["n"]:
        for v in VARIANTS:
            r = payload.get(v, {}).get("by_n", {}).get(str(n))
            if r is None:
                continue
            if r.get("skipped"):
                rows.append(f"| {n:,} | {v} | capped | | | | | | {r.get('reason', '')} | | |")
                continue
            cpu = ", ".join(f"{k} {g['cpu_s_per_1000_msgs']}" for k, g in r.get("cpu", {}).items()
                            if g.get("cpu_s_per_1000_msgs") is not None)
            pg = r.get("postgres", {}).get("active_time_s", "")
            rows.append(" | ".join([f"| {n:,}", v, f"{r.get('msgs_per_s', 0):,.1f}",
                                    f"{r.get('steady_msgs_per_s', '') or ''}",
                                    str(r.get("time_to_first_email_s", "")), str(r.get("send_call_latency_s") or "–"),
                                    str(r.get("redis_peak_mb", "–")), str(r.get("worker_rss_peak_mb", "–")), cpu,
                                    str(pg), str(r.get("machine", {}).get("not_measured_cpu_s", ""))]) + " |")
    ratios = payload.get("ratios", {})
    by_n = payload.get("ratios_by_n", {})
    lines = [head, "\n".join(rows), "",
             f"Ratios at the largest N each ran: platform/baseline **{ratios.get('platform_over_baseline')}**, "
             f"platform/limit **{ratios.get('platform_over_limit')}** "
             f"(baseline at N={payload.get('baseline', {}).get('msgs_per_s_n')}). By N: "
             + "; ".join(f"N={int(n):,}: platform/baseline {r['platform_over_baseline']}, platform/limit "
                         f"{r['platform_over_limit']}" for n, r in by_n.items()) + "."]
    return "\n".join(lines)


def update_marked_section(path: Path, marker: str, body: str) -> None:
    """Replace the text between <!-- marker:start --> and <!-- marker:end --> in `path`."""
    if not path.exists():
        return
    text = path.read_text()
    start, end = f"<!-- {marker}:start -->", f"<!-- {marker}:end -->"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        path.write_text(f"{before}{start}\n{body}\n{end}{after}")

"""Writing a bench run down: the JSON file, a row in results/README.md, the chart, the profile summary."""
from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from pathlib import Path

import costs

VARIANTS = ("limit", "baseline", "platform")
README_HEADER = """# Send bench results

One row per `make bench` run (bench/send_bench.py); the JSON file named in the row has every
figure, the PNG the chart. msgs/s = N / (time from the first publish until the run is done).

| date | commit | N | limit msgs/s | baseline msgs/s | platform msgs/s | platform/baseline | platform/limit | Redis peak MB (baseline / platform) | platform first email s | platform send call ms | platform knobs | notes |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
"""  # noqa: E501  (a Markdown table row is one line)


def ratio(a, b) -> float | None:
    return round(a / b, 4) if a and b else None


def variants(payload: dict) -> list[str]:
    """The variants a run measured: the three, and `platform@<commit>` under --compare."""
    return list(payload.get("variants") or VARIANTS)


def runs_of(entry: dict) -> list[dict]:
    """The single runs behind one variant's figures at one N (several under --compare --repeat)."""
    return entry.get("runs") or [entry]


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
        modes = payload.get("tracking_modes", {}).get("by_n", {}).get(key)
        if modes:
            medians = ", ".join(f"{m} {r.get('msgs_per_s')}" for m, r in modes["modes"].items())
            notes.append(f"platform = tracking {payload['tracking_modes']['platform_figures_are']}; medians of "
                         f"{payload['tracking_modes']['repeat']} interleaved rounds: {medians} msgs/s; "
                         + ", ".join(f"**{k} {v}**" for k, v in modes["ratios"].items() if "/" in k
                                     and not k.endswith("steady")))
        if payload.get("compare"):
            cmp = payload["compare"]
            vs = cmp["by_n"].get(key, {})
            notes.append(f"platform@{cmp['commit']} ({cmp['ref']}) {vs.get('old_msgs_per_s')} msgs/s, new/old "
                         f"**{vs.get('new_over_old')}** (medians of {cmp['repeat']} interleaved runs)")
        plat = got["platform"]
        knobs = plat.get("knobs") or {}
        knob_text = ", ".join(f"{k}={v}" for k, v in knobs.items()) + (
            f", concurrency={plat.get('concurrency')}" if plat else "")
        def fmt(x):
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


COLOURS = {"limit": "#868e96", "baseline": "#e8590c", "platform": "#1971c2"}
OLD_COLOUR = "#9c36b5"  # platform@<commit> under --compare


def chart(path: Path, payload: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns, names = payload["n"], variants(payload)
    fig, (bars, lines) = plt.subplots(1, 2, figsize=(13, 5.2))
    width = 0.8 / len(names)
    drawn_values = []
    for i, v in enumerate(names):
        colour = COLOURS.get(v, OLD_COLOUR)
        for j, n in enumerate(ns):
            r = payload.get(v, {}).get("by_n", {}).get(str(n))
            x = j + (i - (len(names) - 1) / 2) * width
            value = None if r is None or r.get("skipped") else r.get("msgs_per_s")
            if value:
                bars.bar([x], [value], width, label=v if j == 0 or not bars.get_legend_handles_labels()[1].count(v)
                         else None, color=colour)
                each = [run["msgs_per_s"] for run in r.get("runs", []) if run.get("msgs_per_s")]
                if each:  # the median's bar, each run as a dot
                    bars.plot([x] * len(each), each, "o", color="black", markersize=3)
                bars.annotate(f"{value:,.0f}", (x, max([value, *each])), ha="center", va="bottom", fontsize=8,
                              xytext=(0, 3), textcoords="offset points")
                drawn_values += [value, *each]
            else:
                why = "capped" if r and r.get("skipped") else "not run"
                bars.annotate(why, (x, 1.3), ha="center", va="bottom", fontsize=8, rotation=90, color=colour)
    if drawn_values and max(drawn_values) < 10 * min(drawn_values):  # e.g. platform against platform@<commit>
        bars.set_ylim(0, max(drawn_values) * 1.3)
        bars.set_ylabel("messages per second")
    else:  # limit, baseline and platform span two orders of magnitude
        bars.set_yscale("log")
        bars.set_ylim(1, max(drawn_values or [10]) * 3)
        bars.set_ylabel("messages per second (log scale)")
    bars.set_xlim(-0.6, len(ns) - 0.4)
    bars.set_xticks(range(len(ns)), [f"N = {n:,}" for n in ns])
    bars.set_title("Throughput into smtp-sink" + (" (bar: median; dots: runs)" if payload.get("compare") else ""))
    bars.legend()
    if payload.get("compare"):  # colour by variant, line style by round
        styles = ["-", "--", ":", "-."]
        for v in names:
            for n in ns:
                for run in runs_of(payload.get(v, {}).get("by_n", {}).get(str(n), {})):
                    if run.get("timeline"):
                        ts, cs = zip(*run["timeline"], strict=False)
                        k = run.get("round", 1)
                        lines.plot(ts, cs, styles[(k - 1) % len(styles)], color=COLOURS.get(v, OLD_COLOUR),
                                   label=f"{v} N={n:,} run {k}")
    else:
        for v, style in (("platform", "-"), ("baseline", "--")):
            for n in ns:
                r = payload.get(v, {}).get("by_n", {}).get(str(n), {})
                if r.get("timeline"):
                    ts, cs = zip(*r["timeline"], strict=False)
                    lines.plot(ts, cs, style, label=f"{v} N={n:,}")
    lines.set_xlabel("seconds since the send call")
    lines.set_ylabel("messages received by smtp-sink")
    lines.set_title("Messages delivered over time")
    lines.grid(alpha=0.3)
    lines.legend(fontsize=8)
    against = f" vs {payload['compare']['commit']}" if payload.get("compare") else ""
    fig.suptitle(f"Send bench {payload['date']} @ {payload['commit']}{against} — {payload['machine'].get('nproc')} "
                 f"cores, concurrency {payload.get('concurrency')}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _short(frame: str) -> str:
    frame = re.sub(r"\(/[^)]*?/site-packages/", "(", frame)
    return re.sub(r"\(/[^)]*?/(newsletter/)", r"(\1", frame)  # whichever checkout (a clone, a --compare worktree)


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
    def pct(c):
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
        for (f1, p1), (f2, p2) in zip(pad(s["own"]), pad(s["inclusive"]), strict=False):
            out.append(f"| {p1} | {'`' + f1 + '`' if f1 else ''} | | {p2} | {'`' + f2 + '`' if f2 else ''} |")
        out.append("")
    out.append("Files: " + ", ".join(f"`results/{Path(f).name}`" for f in files))
    return "\n".join(out)


def _figures_row(n: int, label: str, r: dict) -> str:
    if r.get("skipped"):
        return f"| {n:,} | {label} | capped | | | | | | {r.get('reason', '')} | | |"
    cpu = ", ".join(f"{k} {g['cpu_s_per_1000_msgs']}" for k, g in r.get("cpu", {}).items()
                    if g.get("cpu_s_per_1000_msgs") is not None)
    pg = r.get("postgres", {}).get("active_time_s", "")
    return " | ".join([f"| {n:,}", label, f"{r.get('msgs_per_s') or 0:,.1f}", f"{r.get('steady_msgs_per_s', '') or ''}",
                       str(r.get("time_to_first_email_s", "")), str(r.get("send_call_latency_s") or "–"),
                       str(r.get("redis_peak_mb", "–")), str(r.get("worker_rss_peak_mb", "–")), cpu,
                       str(pg), str(r.get("machine", {}).get("not_measured_cpu_s", ""))]) + " |"


def _cpu_per_1000(entry: dict, group: str | None = None) -> float | None:
    """Median over the runs of CPU s per 1,000 messages: one process group, or all the measured ones.
    Nearer the code's own cost than msgs/s when other sessions share the cores (they take wall time
    from a run, not CPU time from its processes; contention still adds some)."""
    values = [sum(g.get("cpu_s_per_1000_msgs") or 0 for k, g in run.get("cpu", {}).items() if group in (None, k))
              for run in runs_of(entry) if run.get("cpu") and not run.get("error")]
    return round(statistics.median(values), 4) if values else None


def compare_markdown(payload: dict) -> str:
    """The new-vs-old table of a --compare run: medians, every run in the order it ran, the ratio."""
    cmp = payload["compare"]
    old = cmp["variant"]
    rows = [f"**Today's code (`platform`, `{payload['commit']}`) against `{old}`** (`{cmp['ref']}`: "
            f"{cmp['subject']}), measured in this run on the same PostgreSQL, Redis and smtp-sink, interleaved "
            f"A B A B over {cmp['repeat']} round{'s' if cmp['repeat'] != 1 else ''} per N, "
            "each run a fresh database migrated by its own code:\n",
            f"| N | platform msgs/s, median (runs) | {old} msgs/s, median (runs) | **new/old** | new/old steady "
            f"| CPU s / 1,000 msgs, new / old: worker; all measured | other load CPU s, in run order "
            f"| load average before, in run order |",
            "|---|---|---|---|---|---|---|---|"]
    for n in payload["n"]:
        new_r = payload.get("platform", {}).get("by_n", {}).get(str(n), {})
        old_r = payload.get(old, {}).get("by_n", {}).get(str(n), {})
        def each(r):
            return ", ".join(f"{run.get('msgs_per_s') or 0:,.1f}" + (" (error)" if run.get("error") else "")
                                           for run in runs_of(r))
        ordered = sorted(runs_of(new_r) + runs_of(old_r),
                         key=lambda run: (run.get("round", 1), run.get("variant") != "platform"))
        load = ", ".join(str(run.get("machine", {}).get("not_measured_cpu_s", "–")) for run in ordered)
        avg = ", ".join(str((run.get("machine", {}).get("loadavg_before") or ["–"])[0]) for run in ordered)
        vs = cmp["by_n"].get(str(n), {})
        def fmt(x):
            return "–" if x is None else f"{x:,.1f}"
        rows.append(f"| {n:,} | {fmt(new_r.get('msgs_per_s'))} ({each(new_r)}) | {fmt(old_r.get('msgs_per_s'))} "
                    f"({each(old_r)}) | **{vs.get('new_over_old')}** | {vs.get('new_over_old_steady')} "
                    f"| {_cpu_per_1000(new_r, 'worker')} / {_cpu_per_1000(old_r, 'worker')}; "
                    f"{_cpu_per_1000(new_r)} / {_cpu_per_1000(old_r)} | {load} | {avg} |")
    return "\n".join(rows)


def figures_markdown(payload: dict, json_name: str) -> str:
    """The "Latest figures" section of bench/README.md, from one run's payload."""
    dirty = (f" (with uncommitted application changes, fingerprint {payload.get('app_diff_sha1')})"
             if payload.get("dirty") else "")
    head = (f"Run `{payload.get('command', '')}` on {payload['date']} at commit `{payload['commit']}`{dirty}"
            f"; {payload['machine'].get('nproc')} cores ({payload['machine'].get('cpu_model')}), "
            f"{payload['machine'].get('memory_gb')} GB; worker concurrency {payload.get('concurrency')} "
            f"({payload.get('pool')}); message {(payload.get('message') or {}).get('bytes')} bytes. "
            f"Files: `results/{json_name}`, `results/{Path(json_name).with_suffix('.png').name}`.\n")
    rows = ["| N | variant | msgs/s | steady msgs/s | first email s | send call s | Redis peak MB | worker RSS peak MB "
            "| CPU s / 1,000 msgs (by group) | PostgreSQL active s | other load on the machine (CPU s) |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for n in payload["n"]:
        for v in variants(payload):
            r = payload.get(v, {}).get("by_n", {}).get(str(n))
            if r is None:
                continue
            if "runs" in r:  # --compare: every run, in its round
                rows += [_figures_row(n, f"{v} run {run.get('round')}", run) for run in r["runs"]]
            else:
                rows.append(_figures_row(n, v, r))
    ratios = payload.get("ratios", {})
    by_n = payload.get("ratios_by_n", {})
    lines = [head, "\n".join(rows)]
    if payload.get("compare"):
        lines += ["", compare_markdown(payload)]
    if payload.get("tracking_modes"):
        lines += ["", tracking_markdown(payload)]
    for extra in (costs.sync_markdown(payload), costs.costs_markdown(payload)):
        if extra:
            lines += ["", extra]
    if not payload.get("compare") or ratios.get("platform_over_baseline") or ratios.get("platform_over_limit"):
        lines += ["",
                  f"Ratios at the largest N each ran: platform/baseline **{ratios.get('platform_over_baseline')}**, "
                  f"platform/limit **{ratios.get('platform_over_limit')}** "
                  f"(baseline at N={payload.get('baseline', {}).get('msgs_per_s_n')}). By N: "
                  + "; ".join(f"N={int(n):,}: platform/baseline {r['platform_over_baseline']}, platform/limit "
                              f"{r['platform_over_limit']}" for n, r in by_n.items()) + "."]
    return "\n".join(lines)


def tracking_markdown(payload: dict) -> str:
    """Tracking off vs anonymous vs individual, measured in the same run (send_bench.py --tracking-modes)."""
    info = payload["tracking_modes"]
    modes = info["modes"]
    rows = [f"**Tracking modes in this run** (`platform` above is `{info['platform_figures_are']}`, the product "
            f"default), {info['repeat']} rounds, the order reversed every other round, each run on a fresh "
            "database; issue 14's goal is every tracked mode within 10 % of `off` (ratio >= 0.9):", "",
            "| N | " + " | ".join(f"{m} msgs/s, median (runs)" for m in modes)
            + " | " + " | ".join(f"**{m}/off**" for m in modes if m != "off") + " | within 10 % | message bytes |",
            "|---|" + "---|" * (len(modes) + len([m for m in modes if m != "off"]) + 2)]
    for n, entry in info["by_n"].items():
        cells = []
        for m in modes:
            r = entry["modes"].get(m, {})
            each = ", ".join(f"{x.get('msgs_per_s'):,}" if x.get("msgs_per_s") else "–" for x in r.get("runs", []))
            cells.append(f"{r.get('msgs_per_s'):,} ({each})" if r.get("msgs_per_s") else "–")
        ratios = entry["ratios"]
        cells += [f"**{ratios.get(f'{m}/off')}**" for m in modes if m != "off"]
        cells.append(str(ratios.get("within_10_percent")))
        cells.append(" / ".join(str((entry["modes"].get(m, {}).get("runs") or [{}])[0].get("message_bytes"))
                                for m in modes))
        rows.append(f"| {int(n):,} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


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

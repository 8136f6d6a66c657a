"""What one message costs in a platform run, as Markdown tables: CPU by process group, commits,
row writes by table (pg_stat_user_tables), Redis commands; and the --sync-commit comparison.

The figures come from `platform_run.per_message` (each run's `per_message` in the JSON).
"""
from __future__ import annotations

import statistics

COUNTERS = ("n_tup_ins", "n_tup_upd", "n_tup_hot_upd", "n_tup_del")


def _writes(tables: dict, table: str) -> str:
    t = tables.get(table)
    if not t:
        return "–"
    return " / ".join(f"{t[c]:g}" for c in COUNTERS)


def _labelled_runs(payload: dict) -> list[tuple[int, str, dict]]:
    """(N, label, run) of every platform run with per-message costs, in the order they ran."""
    out = []
    for n, entry in (payload.get("sync_commit") or {}).get("by_n", {}).items():
        for mode, summary in entry["modes"].items():
            out += [(int(n), f"commits {mode}, round {run.get('round')}", run) for run in summary.get("runs", [])]
    for variant, value in payload.items():
        if not variant.startswith("platform") or not isinstance(value, dict) or "by_n" not in value:
            continue
        for n, entry in value["by_n"].items():
            for run in entry.get("runs") or [entry]:
                if run.get("commits") or run.get("tracking") and payload.get("tracking_modes"):
                    continue  # listed under its mode
                label = variant + (f" run {run['round']}" if run.get("round") else "")
                out.append((int(n), label, run))
    for n, entry in (payload.get("tracking_modes") or {}).get("by_n", {}).items():
        for mode, summary in entry["modes"].items():
            out += [(int(n), f"tracking {mode}, round {run.get('round')}", run) for run in summary.get("runs", [])]
    seen, unique = set(), []
    for item in sorted(out, key=lambda x: x[0]):
        if id(item[2]) not in seen and item[2].get("per_message"):
            seen.add(id(item[2]))
            unique.append(item)
    return unique


def costs_markdown(payload: dict) -> str:
    """One row per platform run: what a message cost. Empty when the runs predate these figures."""
    runs = _labelled_runs(payload)
    if not runs:
        return ""
    rows = ["**Per message** (CPU in ms; row writes from pg_stat_user_tables' deltas, read after every backend "
            "of the run's database had exited: inserted / updated / of which HOT / deleted; Redis commands from "
            "INFO commandstats, the bench's INFO polls not counted):", "",
            "| N | run | msgs/s | worker CPU ms | PostgreSQL CPU ms | commits | `deliveries` rows | "
            "`delivery_attempts` rows | all tables | Redis commands | load average before |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for n, label, run in runs:
        cost = run["per_message"]
        tables = cost.get("tables", {})
        load = (run.get("machine", {}).get("loadavg_before") or ["–"])[0]
        rows.append(f"| {n:,} | {label} | {run.get('msgs_per_s') or 0:,.1f} | {cost.get('worker_cpu_ms')} | "
                    f"{cost.get('postgres_cpu_ms')} | {cost.get('xact_commit')} | {_writes(tables, 'deliveries')} | "
                    f"{_writes(tables, 'delivery_attempts')} | {_writes(tables, 'total')} | "
                    f"{cost.get('redis_ops')} | {load} |")
    return "\n".join(rows)


def _median(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None and not r.get("error")]
    return round(statistics.median(values), 4) if values else None


def sync_markdown(payload: dict) -> str:
    """Worker commits asynchronous (today) against synchronous, medians per N (--sync-commit)."""
    info = payload.get("sync_commit")
    if not info:
        return ""
    rows = [f"**Worker commits asynchronous against synchronous** ({info['setting']}), {info['repeat']} rounds, "
            "the order reversed every other round, each run on a fresh database; medians (runs):", "",
            "| N | async msgs/s | sync msgs/s | **sync/async** | PostgreSQL CPU ms a message, async / sync | "
            "worker CPU ms, async / sync | commits a message, async / sync |",
            "|---|---|---|---|---|---|---|"]
    for n, entry in info["by_n"].items():
        a, s = (entry["modes"].get(m, {}) for m in ("async", "sync"))
        ra, rs = a.get("runs", []), s.get("runs", [])

        def each(runs: list[dict]) -> str:
            return ", ".join(f"{r.get('msgs_per_s') or 0:,.1f}" for r in runs)
        commits = [_median([r.get("per_message", {}) for r in x], "xact_commit") for x in (ra, rs)]
        rows.append(f"| {int(n):,} | {a.get('msgs_per_s') or 0:,.1f} ({each(ra)}) | {s.get('msgs_per_s') or 0:,.1f} "
                    f"({each(rs)}) | **{entry['ratios'].get('sync/async msgs_per_s')}** | "
                    f"{_median(ra, 'pg_cpu_ms_per_msg')} / {_median(rs, 'pg_cpu_ms_per_msg')} | "
                    f"{_median(ra, 'worker_cpu_ms_per_msg')} / {_median(rs, 'worker_cpu_ms_per_msg')} | "
                    f"{commits[0]} / {commits[1]} |")
    return "\n".join(rows)


def sync_chart(path, payload: dict) -> None:
    """--sync-commit's chart: msgs/s (median bar, each run a dot) and PostgreSQL CPU ms a message, by N and mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_n = payload["sync_commit"]["by_n"]
    ns = list(by_n)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, key, title in ((axes[0], "msgs_per_s", "messages per second"),
                           (axes[1], "pg_cpu_ms_per_msg", "PostgreSQL CPU ms a message")):
        for i, mode in enumerate(("async", "sync")):
            runs = [by_n[n]["modes"].get(mode, {}).get("runs", []) for n in ns]
            xs = [j + (i - 0.5) * 0.38 for j in range(len(ns))]
            ax.bar(xs, [_median(r, key) or 0 for r in runs], width=0.36, label=f"worker commits {mode}")
            for x, rs in zip(xs, runs, strict=True):
                ax.plot([x] * len(rs), [r.get(key) or 0 for r in rs], "k.")
        ax.set_xticks(range(len(ns)), [f"N = {int(n):,}" for n in ns])
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.suptitle(f"Worker commits async vs sync, {payload['date']} @ {payload['commit']} (loaded machine: "
                 "compare within the run)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)

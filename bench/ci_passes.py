"""CI's two test passes one after the other, or both at once: wall time of each arrangement.

`.ci/run` runs the suite on the embedded defaults (SQLite + embedded Redis) and on PostgreSQL +
Redis + RabbitMQ. This bench runs the same two pytest sessions on a set of test modules, serial
(embedded, then PostgreSQL) and concurrent (both started together), interleaved round by round so
that both arrangements meet the same load on this shared machine; it writes each run's wall time,
the sessions' outcome lines and the load average to a TSV in bench/results.

    .venv/bin/python bench/ci_passes.py --rounds 2 tests/pipeline/test_campaign_control.py ...

The whole suite is `.ci/run` itself (it prints its own timings); this is for a quick ratio.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOGS = Path(os.environ.get("TMPDIR", "/tmp")) / "ci-passes-logs"  # each session's whole output
EXTERNAL = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
    "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/1",
}


def _env(external: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in EXTERNAL}
    env["CI"] = "true"
    return {**env, **EXTERNAL} if external else env


def _start(external: bool, modules: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *modules],
                            cwd=ROOT, env=_env(external), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _outcome(process: subprocess.Popen) -> str:
    """The session's exit status, last line and failed tests (its whole output goes to LOGS)."""
    out, _ = process.communicate()
    LOGS.mkdir(parents=True, exist_ok=True)
    (LOGS / f"{time.strftime('%H%M%S')}-{process.pid}.log").write_text(out)
    lines = [line for line in out.splitlines() if line.strip()]
    failed = [line[:200] for line in lines if line.startswith(("FAILED", "ERROR"))]
    return f"rc={process.returncode} {lines[-1] if lines else ''}" + "".join(f" [{f}]" for f in failed)


def serial(modules: list[str]) -> tuple[float, str]:
    began = time.monotonic()
    results = [_outcome(_start(external, modules)) for external in (False, True)]
    return time.monotonic() - began, " | ".join(results)


def concurrent(modules: list[str]) -> tuple[float, str]:
    began = time.monotonic()
    processes = [_start(external, modules) for external in (False, True)]
    results = [_outcome(p) for p in processes]
    return time.monotonic() - began, " | ".join(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("modules", nargs="+")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    out = ROOT / "bench" / "results" / f"ci-passes-{dt.date.today().isoformat()}-{commit}.tsv"
    rows = [f"# bench/ci_passes.py at {commit}, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, "
            f"{os.cpu_count()} cores; modules: {' '.join(args.modules)}",
            "# round\tarrangement\twall s\tload1 before\tload1 after\toutcome (embedded | postgresql)"]
    for round_no in range(1, args.rounds + 1):
        # Alternate which arrangement goes first so neither always meets the same part of the load.
        order = (serial, concurrent) if round_no % 2 else (concurrent, serial)
        for arrangement in order:
            before = os.getloadavg()[0]
            wall, outcome = arrangement(args.modules)
            row = f"{round_no}\t{arrangement.__name__}\t{wall:.1f}\t{before:.2f}\t{os.getloadavg()[0]:.2f}\t{outcome}"
            print(row, flush=True)
            rows.append(row)
    out.write_text("\n".join(rows) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""The automation entry bench: N subscribers enter a welcome automation at once (one bulk add to
its list) while a campaign sends, on the Procfile's processes (bulk worker ×4, transactional worker
×2, beat) with the production send settings, PostgreSQL, Redis, RabbitMQ and smtp-sink
(tests/automations/test_entry_bench.py with AUTOMATION_BENCH_N). Reports the campaign's msgs/s
alone, during the entry and alone again (interleaved), how long until everyone entered and until
every automation email was sent, the automation's msgs/s, the p50/p95 latency of API notifications
posted during the burst, and that the sink received exactly what the ledgers say was sent.
Writes results/automation-entry-<date>-<commit>-n<N>.json; bench/README.md "Automation entry" has the figures.

    python bench/automation_bench.py [--n 100000] [--campaign 50000] [--notify-rate 1000] [--interval 1]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICES = {"DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres", "REDIS_URL": "redis://127.0.0.1:6379/0",
            "CELERY_BROKER_URL": "amqp://guest:guest@127.0.0.1:5672//",
            "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/1"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="subscribers entering at once")
    parser.add_argument("--campaign", type=int, default=50_000, help="the campaign's recipients (each run)")
    parser.add_argument("--notify-rate", default="1000", help="NOTIFY_RATE during the bench (messages/s)")
    parser.add_argument("--interval", default="1", help="AUTOMATION_INTERVAL during the bench (seconds)")
    args = parser.parse_args(argv)
    env = {**SERVICES, **os.environ, "AUTOMATION_BENCH_N": str(args.n),
           "AUTOMATION_BENCH_CAMPAIGN": str(args.campaign),
           "AUTOMATION_BENCH_NOTIFY_RATE": args.notify_rate, "AUTOMATION_BENCH_INTERVAL": args.interval}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                          "tests/automations/test_entry_bench.py"], cwd=ROOT, env=env, capture_output=True, text=True)
    found = re.search(r"automation entry bench: (\{.*\})", run.stdout)
    tail = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-500:]
    if not found:
        print(run.stdout[-3000:], run.stderr[-3000:], sep="\n")
        return 1
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    result = {**json.loads(found.group(1)), "test": tail, "commit": commit, "cpus": os.cpu_count(),
              "database": env["DATABASE_URL"].split("@")[-1], "broker": env["CELERY_BROKER_URL"].split("@")[-1],
              "date": datetime.date.today().isoformat()}
    out = ROOT / "bench" / "results" / f"automation-entry-{result['date']}-{commit}-n{args.n}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0 if run.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

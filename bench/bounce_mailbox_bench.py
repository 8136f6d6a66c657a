"""The bounce mailbox soak at full size: 10,000 bounces in a real dovecot mailbox, drained by
beat's poll on a real worker while a campaign sends (tests/pipeline/test_bounce_mailbox_soak.py
with BOUNCE_SOAK_N), on PostgreSQL unless DATABASE_URL says otherwise. Writes the measured line
to results/bounce-mailbox-<date>-<commit>.json; bench/README.md "Bounce mailbox" has the figures.

    python bench/bounce_mailbox_bench.py [--n 10000]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args(argv)
    env = {**os.environ, "BOUNCE_SOAK_N": str(args.n)}
    env.setdefault("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                          "tests/pipeline/test_bounce_mailbox_soak.py"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    found = re.search(r"bounce mailbox soak: (\{.*\})", run.stdout)
    tail = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr[-500:]
    if not found:
        print(run.stdout[-3000:], run.stderr[-3000:], sep="\n")
        return 1
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    result = {**json.loads(found.group(1)), "test": tail, "commit": commit, "cpus": os.cpu_count(),
              "load_average_after": os.getloadavg(), "date": datetime.date.today().isoformat()}
    out = ROOT / "bench" / "results" / f"bounce-mailbox-{result['date']}-{commit}-p{result['pollers']}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0 if run.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

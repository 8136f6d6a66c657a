"""What each index of `deliveries` costs the ledger's writes: PostgreSQL backend CPU per message, interleaved.

    .venv/bin/python bench/ledger_index_cost.py                  # 20,000 rows a round, 3 rounds
    .venv/bin/python bench/ledger_index_cost.py --rows 50000 --rounds 5

A throwaway database (`nlidxcost_<pid>_<hex>`) migrated to head; one copy of `deliveries` per
variant (its columns, a chosen set of indexes, optionally a fillfactor). Each round, for every
variant in turn: the snapshot's INSERT of `--rows` pending rows (INSERT ... SELECT in chunks),
then the happy path of a worker in rounds of 16: the fence (the claiming UPDATE, `fences`'s SQL)
and its COMMIT, then the record (`ledger`'s UPDATE ... FROM unnest) and, for the variants that
still write one (the code before migration 0026), the batch's attempt rows (INSERT ... unnest),
and their COMMIT, asynchronous like the worker's. The backend's own CPU
(/proc/<pid>/stat, utime + stime) is read around each phase: what the database spends, not the
client. No worker, no SMTP, no Redis: the same statements the platform runs, isolated, so that an
index's cost is not lost in a loaded machine's noise (the platform bench measures the whole).
Writes bench/results/<date>-<commit>-ledger-index-cost.json.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT)]

import platform_db  # noqa: E402
from newsletter.services.delivery import fences, ledger  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
ROUND = 16  # SEND_SESSIONS: the messages a fence covers
CAMPAIGN_ID_ID = "CREATE INDEX {name} ON {table} (campaign_id, id)"  # dropped by migration 0026
# "attempt_row": the record's batch also inserts one delivery_attempts row a message (before 0026).
VARIANTS: dict[str, dict] = {
    "0025": {"extra": [CAMPAIGN_ID_ID], "attempt_row": True},  # the ledger before migration 0026
    "0026-indexes": {"attempt_row": True},  # 0026's index drop alone
    "0026": {},  # today's (head): no (campaign_id, id) index, no attempt row for a send recorded on its row
    "0026-ff70": {"fillfactor": 70},  # the same with free space on the pages (fillfactor 70)
    "pkey-only": {"only_pkey": True},  # what all the other indexes cost together
}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def make_tables(conn: psycopg.Connection) -> None:
    defs = conn.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'deliveries'").fetchall()
    for variant, spec in VARIANTS.items():
        table = "d_" + variant.replace("-", "_")
        ff = f" WITH (fillfactor = {spec['fillfactor']})" if spec.get("fillfactor") else ""
        conn.execute(f"CREATE TABLE {table} (LIKE deliveries INCLUDING DEFAULTS){ff}")
        conn.execute(f"CREATE TABLE a_{table[2:]} (LIKE delivery_attempts INCLUDING DEFAULTS)")
        for name, ddl in defs:
            if spec.get("only_pkey") and not name.startswith("pk_"):
                continue
            conn.execute(ddl.replace(f"INDEX {name} ON public.deliveries", f"INDEX {name}_{table} ON {table}"))
        for ddl in spec.get("extra", []):
            conn.execute(ddl.format(name=f"ix_extra_{table}", table=table))
        for name, ddl in conn.execute("SELECT indexname, indexdef FROM pg_indexes "
                                      "WHERE tablename = 'delivery_attempts'").fetchall():
            conn.execute(ddl.replace(f"INDEX {name} ON public.delivery_attempts",
                                     f"INDEX {name}_{table} ON a_{table[2:]}"))
        spec["table"] = table
        spec["indexes"] = conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s", (table,)).fetchone()[0]
    conn.commit()


def one_round(conn: psycopg.Connection, pid: int, table: str, rows: int, attempt_row: bool) -> dict[str, float]:
    attempts = "a_" + table[2:]
    conn.execute(f"TRUNCATE {table}, {attempts}")
    conn.commit()
    spent: dict[str, float] = {"insert": 0.0, "fence": 0.0, "record": 0.0, "attempts": 0.0}
    start = cpu_seconds(pid)
    for first in range(1, rows + 1, 5000):
        conn.execute(f"INSERT INTO {table} (id, campaign_id, subscriber_id, email, status, attempts, "
                     "smtp_message, worker, created_at, updated_at) SELECT g, 1, g, 'user' || g || '@example.org', "
                     "'pending', 0, '', '', now(), now() FROM generate_series(%s::bigint, %s::bigint) AS g",
                     (first, min(first + 4999, rows)))
        conn.commit()
    spent["insert"] = cpu_seconds(pid) - start
    conn.execute(f"ANALYZE {table}")  # as autovacuum would soon after a snapshot (not counted)
    conn.commit()
    # The worker sends it through libpq's pipeline mode with $n parameters (now, ids, token, worker).
    fence = re.sub(r"\$(\d)", lambda m: f"%({'now ids token worker'.split()[int(m.group(1)) - 1]})s",
                   fences._CLAIMING_SQL.format(table=table))
    record = ledger._RECORD_SQL.replace("UPDATE deliveries", f"UPDATE {table}")
    attempt = ledger._ATTEMPTS_SQL.replace("INSERT INTO delivery_attempts", f"INSERT INTO {attempts}")
    worker, token = "bench@host:1", "t" * 32
    for first in range(1, rows + 1, ROUND):
        ids = list(range(first, min(first + ROUND, rows + 1)))
        t0 = cpu_seconds(pid)
        conn.execute(fence, {"now": datetime.now(UTC), "ids": ids, "token": token, "worker": worker}, prepare=True)
        conn.commit()
        t1 = cpu_seconds(pid)
        now = datetime.now(UTC)
        rows_json = json.dumps([{"id": i, "status": "sent", "code": 250, "msg": "2.0.0 Ok: queued", "next_at": None,
                                 "due_now": False, "sent": True, "claimed": True, "undo": 0} for i in ids])
        conn.execute(record, {"rows": rows_json, "now": now, "token": token, "worker": worker, "task_id": "x" * 36},
                     prepare=True).fetchall()
        t2 = cpu_seconds(pid)
        if attempt_row:
            conn.execute(attempt, {"rows": json.dumps([{"id": i, "attempt": 1, "status": "sent", "code": 250,
                                                        "msg": "2.0.0 Ok: queued"} for i in ids]),
                                   "at": now, "worker": worker, "task_id": "x" * 36}, prepare=True)
        conn.commit()
        t3 = cpu_seconds(pid)
        spent["fence"] += t1 - t0
        spent["record"] += t2 - t1
        spent["attempts"] += t3 - t2
    assert conn.execute(f"SELECT count(*) FROM {table} WHERE status = 'sent'").fetchone()[0] == rows
    return {phase: seconds * 1000 / rows for phase, seconds in spent.items()}  # ms a message


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with platform_db.migrated_database("nlidxcost_") as url:
        with psycopg.connect(url) as conn:
            conn.execute("SET synchronous_commit = off")  # the worker's connections (dialect.commit_asynchronously)
            make_tables(conn)
            pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
            runs: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
            loads = []
            for r in range(args.rounds):
                order = list(VARIANTS) if r % 2 == 0 else list(reversed(VARIANTS))
                for variant in order:
                    loads.append(os.getloadavg()[0])
                    runs[variant].append(one_round(conn, pid, VARIANTS[variant]["table"], args.rows,
                                                   bool(VARIANTS[variant].get("attempt_row"))))
                    print(variant, r + 1, {k: round(v, 4) for k, v in runs[variant][-1].items()}, flush=True)
        summary = {}
        for variant, found in runs.items():
            med = {phase: statistics.median(run[phase] for run in found) for phase in found[0]}
            med["total"] = sum(med.values())
            summary[variant] = {"indexes": VARIANTS[variant]["indexes"], "median_ms_per_msg": med, "runs": found}
        base = summary["0025"]["median_ms_per_msg"]["total"]
        for variant, s in summary.items():
            s["total_vs_0025"] = s["median_ms_per_msg"]["total"] / base
            print(f"{variant:10} indexes {s['indexes']:2}  " + "  ".join(
                f"{k} {v:.4f}" for k, v in s["median_ms_per_msg"].items()) + f"  vs 0025 {s['total_vs_0025']:.3f}")
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
        out = BENCH / "results" / f"{datetime.now(UTC):%Y-%m-%d}-{commit}-ledger-index-cost.json"
        out.write_text(json.dumps({"commit": commit, "rows": args.rows, "rounds": args.rounds,
                                   "load_average_before_each_run": loads, "variants": summary}, indent=1) + "\n")
        print("wrote", out)


if __name__ == "__main__":
    main()

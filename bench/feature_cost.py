"""Worker CPU per message of each optional send feature, measured in one process, interleaved.

    .venv/bin/python bench/feature_cost.py [--rounds 2000] [--repeat 5]

The bench campaign's message (bench/platform_db.py) is built the way a worker builds it
(`campaign_send.build_envelope`) for a rotating set of subscribers, `--rounds` times per
configuration: tracking off (the reference), anonymous, individual; the VERP return path on
(BOUNCE_ADDRESS set; its HMAC) and off; and a DKIM signature of the built message (`dkim.sign_bytes`
with in-memory keys: RSA-2048, Ed25519). The configurations take turns, the order reversed every
other repeat, and each one's CPU time (time.process_time) per message is the median over the
repeats, so other sessions on the machine slow every configuration alike. What this leaves out:
the end-to-end run's costs outside the message build (the ledger, SMTP, Redis), which a feature
does not change, and the build's own cost when the worker competes for a CPU.

Each message is built as `_envelope_for` builds it in a worker: with the subscriber's token
version and language from the batch's one query (without them the build looks the version up,
one SELECT a message, which no worker does).

`--compare REF`: the builds of the code at REF (a temporary worktree, as send_bench's --compare)
measured in the same run: two child processes, one per tree, each with its own database,
take turns (new, old, old, new, ...) on every configuration and repeat, so the ratio new/old
comes from the same minutes of the machine. DKIM signing is left out there (not the build).

Writes bench/results/<date>-<commit>-feature-cost.json (`-feature-cost-vs-<ref>` with
--compare). Needs PostgreSQL and starts a Redis of its own; both are removed on the way out.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
# A --compare child imports the other tree's `newsletter` (its worktree), the bench from here.
sys.path[:0] = [str(BENCH), os.environ.get("FEATURE_COST_APP_ROOT", str(BENCH.parent))]

import platform_db  # noqa: E402
import report  # noqa: E402
import send_bench  # noqa: E402
from procs import Children  # noqa: E402

APP_ROOT = Path(os.environ.get("FEATURE_COST_APP_ROOT", str(BENCH.parent)))
sys.path.insert(0, str(APP_ROOT))  # again: send_bench put this tree first on import

TRACKING = ("off", "anonymous", "individual")
PEOPLE = 50


def build_configs(campaigns: dict[str, int]) -> dict[str, dict]:
    return {"tracking off (reference)": {"campaign": campaigns["off"]},
            "tracking anonymous": {"campaign": campaigns["anonymous"]},
            "tracking individual": {"campaign": campaigns["individual"]},
            "VERP return path (BOUNCE_ADDRESS set)": {"campaign": campaigns["off"], "bounce": "bounces@example.com"}}


def _make_campaigns() -> dict[str, int]:
    """The bench audience and one bench campaign per tracking mode (inside an app context)."""
    list_id = platform_db.make_audience(PEOPLE)
    campaigns = {}
    for mode in TRACKING:
        os.environ["BENCH_TRACKING"] = mode
        campaigns[mode] = platform_db.make_campaign(list_id)
    return campaigns


def _setup(campaigns: dict[str, int]) -> tuple[Any, list, dict[int, Any]]:
    """The send service, the bench's people (as `_people` reads them) and each campaign prepared."""
    from sqlalchemy import select

    from newsletter.extensions import db
    from newsletter.models import Campaign, Subscriber

    send = platform_db.service("campaign_send")
    people = [(p.id, p.email, p.name, p.attributes, p.token_version, getattr(p, "language", None))
              for p in db.session.scalars(select(Subscriber).order_by(Subscriber.id).limit(PEOPLE))]
    db.session.commit()
    entries = {cid: send.prepared(db.session.get(Campaign, cid)) for cid in set(campaigns.values())}
    return send, people, entries


def _build_loop(send: Any, people: list, entry: Any, rounds: int) -> float:
    """CPU µs a message of `rounds` builds, each as a worker's `_envelope_for` makes it."""
    started = time.process_time()
    for i in range(rounds):
        sid, email, name, attributes, version, language = people[i % len(people)]
        send.build_envelope(entry, i + 1, sid, email, name, attributes, token_version=version, language=language)
    return (time.process_time() - started) / rounds * 1e6


def _build_config(name: str, campaigns: dict[str, int], send: Any, people: list, entries: dict, rounds: int) -> float:
    from flask import current_app

    config = build_configs(campaigns)[name]
    current_app.config["BOUNCE_ADDRESS"] = config.get("bounce", "")
    try:
        return _build_loop(send, people, entries[config["campaign"]], rounds)
    finally:
        current_app.config["BOUNCE_ADDRESS"] = ""


def measure(args: argparse.Namespace, campaigns: dict[str, int]) -> dict:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    from newsletter.models import DkimAlgorithm
    from newsletter.services.deliverability import dkim

    send, people, entries = _setup(campaigns)
    configs = build_configs(campaigns)
    signers = {"DKIM RSA-2048 signature": [dkim.Signer("example.com", "s1", DkimAlgorithm.RSA,
                                                       rsa.generate_private_key(public_exponent=65537, key_size=2048))],
               "DKIM Ed25519 signature": [dkim.Signer("example.com", "s2", DkimAlgorithm.ED25519,
                                                      ed25519.Ed25519PrivateKey.generate())]}
    sid, email, name, attributes, version, language = people[0]
    sample = send.build_envelope(entries[campaigns["off"]], 1, sid, email, name, attributes,
                                 token_version=version, language=language).data
    timings: dict[str, list[float]] = {name: [] for name in [*configs, *signers]}
    for repeat in range(-1, args.repeat):  # -1: a warm-up pass, not counted (templates, caches, first links)
        order = list(timings) if repeat % 2 == 0 else list(reversed(timings))
        for name in order:
            if name in signers:
                started = time.process_time()
                for _ in range(args.rounds):
                    dkim.sign_bytes(sample, signers[name])
                spent = (time.process_time() - started) / args.rounds * 1e6
            else:
                spent = _build_config(name, campaigns, send, people, entries, args.rounds)
            if repeat >= 0:
                timings[name].append(spent)
    reference = statistics.median(timings["tracking off (reference)"])
    out = {}
    for name, values in timings.items():
        median = statistics.median(values)
        extra = median if name in signers else median - reference
        out[name] = {"us_per_message": round(median, 1), "runs_us": [round(v, 1) for v in values],
                     "added_us_per_message": round(extra, 1) if not name.startswith("tracking off") else 0.0,
                     "added_over_reference_build": round(extra / reference, 3)}
    out["message_bytes"] = len(sample)
    return out


# --compare: one child process per tree, taking turns ---------------------------------------------

def serve() -> int:
    """A child of --compare: set up the campaigns in this tree's code, then build on request.

    Reads one JSON command a line on stdin ({"config": name, "rounds": n}, or {} to stop) and
    answers each with {"us": CPU µs a message} on stdout."""
    from newsletter import create_app
    from newsletter.extensions import db

    app = create_app()
    with app.app_context():
        campaigns = _make_campaigns()
        send, people, entries = _setup(campaigns)
        sid, email, name, attributes, version, language = people[0]
        size = len(send.build_envelope(entries[campaigns["off"]], 1, sid, email, name, attributes,
                                       token_version=version, language=language).data)
        import newsletter

        assert Path(newsletter.__file__).resolve().is_relative_to(APP_ROOT.resolve()), newsletter.__file__
        print(json.dumps({"ready": True, "message_bytes": size, "newsletter": newsletter.__file__}), flush=True)
        for line in sys.stdin:
            command = json.loads(line)
            if not command:
                break
            spent = _build_config(command["config"], campaigns, send, people, entries, command["rounds"])
            print(json.dumps({"us": spent}), flush=True)
        db.session.remove()
        db.engine.dispose()
    return 0


class _Side:
    """One tree's child process, driven over its stdin/stdout."""

    def __init__(self, label: str, app_root: Path, redis_url: str, workdir: Path, databases: list[str]) -> None:
        db_url, name = platform_db.create_database()
        databases.append(name)
        env = platform_db.platform_env(db_url, redis_url, workdir / label, 25, os.urandom(32).hex(), {},
                                       app_root=app_root)
        (workdir / label).mkdir(parents=True, exist_ok=True)
        platform_db.migrate(env, app_root)
        env["FEATURE_COST_APP_ROOT"] = str(app_root)
        self.label = label
        self.log = open(workdir / f"{label}.log", "ab")
        self.proc = subprocess.Popen([sys.executable, str(BENCH / "feature_cost.py"), "--serve"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     start_new_session=True)
        self.ready = self._answer()

    def _answer(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"feature-cost: the {self.label} child stopped (see {self.log.name})")
        return json.loads(line)

    def build(self, config: str, rounds: int) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"config": config, "rounds": rounds}) + "\n")
        self.proc.stdin.flush()
        return float(self._answer()["us"])

    def close(self) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            try:
                self.proc.stdin.write("{}\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                Children.stop(self.proc, grace=5)
        self.log.close()


def measure_compare(args: argparse.Namespace, sides: dict[str, _Side]) -> dict:
    """Every build configuration on both trees, taking turns; medians and the ratio new/old."""
    names = list(build_configs({mode: 0 for mode in TRACKING}))
    timings: dict[str, dict[str, list[float]]] = {name: {label: [] for label in sides} for name in names}
    turn = 0
    for repeat in range(-1, args.repeat):  # -1: a warm-up pass, not counted
        for name in (names if repeat % 2 == 0 else list(reversed(names))):
            labels = list(sides) if turn % 2 == 0 else list(reversed(list(sides)))
            turn += 1
            for label in labels:
                spent = sides[label].build(name, args.rounds)
                if repeat >= 0:
                    timings[name][label].append(spent)
    out = {}
    for name, by_side in timings.items():
        new, old = by_side["new"], by_side["old"]
        out[name] = {"new_us_per_message": round(statistics.median(new), 1),
                     "old_us_per_message": round(statistics.median(old), 1),
                     "new_over_old": round(statistics.median(new) / statistics.median(old), 3),
                     "new_over_old_by_repeat": [round(a / b, 3) for a, b in zip(new, old, strict=True)],
                     "new_runs_us": [round(v, 1) for v in new], "old_runs_us": [round(v, 1) for v in old]}
    out["message_bytes"] = {label: side.ready.get("message_bytes") for label, side in sides.items()}
    out["imported"] = {label: side.ready.get("newsletter") for label, side in sides.items()}
    return out


def _payload(args: argparse.Namespace, started: datetime, state: dict, load_before: tuple[float, ...],
             figures: dict) -> dict:
    """The result file: when, what code, the command, the machine and its load, then `figures`."""
    return {"date": started.strftime("%Y-%m-%d"), "started_at": started.isoformat(timespec="seconds"),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"), **state,
            "command": " ".join([Path(sys.executable).name, *sys.argv]), "rounds": args.rounds,
            "repeat": args.repeat, "machine": send_bench.machine(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()], **figures}


def main_compare(args: argparse.Namespace) -> int:
    import compare

    started, state, stem, workdir = send_bench.start_run("feature-cost", "", f"feature-cost-vs-{args.compare}")
    tree = compare.checkout(args.compare)
    children = Children()
    databases: list[str] = []
    sides: dict[str, _Side] = {}
    try:
        _, redis_url = send_bench.own_redis(children, workdir)
        base = redis_url.rsplit("/", 1)[0]
        sides["new"] = _Side("new", BENCH.parent, f"{base}/10", workdir, databases)
        sides["old"] = _Side("old", tree.path, f"{base}/11", workdir, databases)
        load_before = os.getloadavg()
        figures = measure_compare(args, sides)
    finally:
        for side in sides.values():
            side.close()
        children.stop_all()
        for name in databases:
            platform_db.drop_database(name)
        compare.remove(tree)
    payload = _payload(args, started, state, load_before, {
        "compare": {"ref": args.compare, "commit": tree.commit, "subject": tree.subject}, "builds": figures,
        "notes": ["CPU time (time.process_time) per message built, in each tree's own child process; "
                  "the two take turns on every configuration and repeat (the order alternating), "
                  "medians over the repeats; new_over_old is the ratio of the medians."]})
    report.write_json(send_bench.RESULTS / f"{stem}.json", payload)
    for name, f in figures.items():
        if isinstance(f, dict) and "new_over_old" in f:
            print(f"{name}: new {f['new_us_per_message']} µs, old {f['old_us_per_message']} µs a message, "
                  f"new/old {f['new_over_old']} (by repeat {f['new_over_old_by_repeat']})")
    print(f"feature-cost: wrote {send_bench.RESULTS / (stem + '.json')}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2000, help="messages built per configuration and repeat")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--compare", metavar="REF", help="also measure the code at git ref REF, taking turns with this tree")
    p.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # a --compare child
    args = p.parse_args()
    if args.serve:
        return serve()
    if args.compare:
        return main_compare(args)
    started, state, stem, workdir = send_bench.start_run("feature-cost", "", "feature-cost")
    children = Children()
    name = None
    try:
        _, redis_url = send_bench.own_redis(children, workdir)
        db_url, name = platform_db.create_database()
        env = platform_db.platform_env(db_url, redis_url, workdir, 25, os.urandom(32).hex(), {})
        platform_db.migrate(env)
        os.environ.update(env)
        from newsletter import create_app
        from newsletter.extensions import db

        app = create_app()
        with app.app_context():
            campaigns = _make_campaigns()
            load_before = os.getloadavg()
            figures = measure(args, campaigns)
            db.session.remove()
            db.engine.dispose()
    finally:
        children.stop_all()
        if name:
            platform_db.drop_database(name)
    payload = _payload(args, started, state, load_before, {
        "features": figures,
        "notes": ["CPU time of this one process (time.process_time) per message built or signed; "
                  "added_us_per_message is the median over tracking off's for a build, the whole "
                  "signature for DKIM (done after the build, on its bytes)."]})
    report.write_json(send_bench.RESULTS / f"{stem}.json", payload)
    for feature, f in figures.items():
        if isinstance(f, dict):
            print(f"{feature}: {f['us_per_message']} µs a message, +{f['added_us_per_message']} µs")
    print(f"feature-cost: wrote {send_bench.RESULTS / (stem + '.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

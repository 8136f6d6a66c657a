"""`--compare REF`: the platform at another git ref measured beside today's, in the same bench run.

The old code is checked out with `git worktree` into a temporary directory and runs from there
on the bench's own venv, so every version it pins must be installed there (checked before anything runs).
Each platform run, new or old, happens in a child process of its own (`python bench/compare.py
--child SPEC`): one process can import only one `newsletter`, and both sides should go through
the same harness (platform_run) the same way. Runs are interleaved A B A B over `--repeat`
rounds so that drift on a shared machine hits both; each gets a fresh database, migrated by
its own code's migrations, which the parent creates and drops (a killed child leaves nothing).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import platform_db
import platform_run
from procs import Children
from variants import Context

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SETUP_ALLOWANCE_S = 600  # on top of the run's timeout: migrations, N subscribers, the quiet wait, teardown
MEDIAN_FIELDS = ("msgs_per_s", "steady_msgs_per_s", "time_to_first_email_s", "send_call_latency_s",
                 "redis_peak_mb", "worker_rss_peak_mb", "pg_cpu_ms_per_msg", "worker_cpu_ms_per_msg",
                 "redis_ops_per_msg", "row_writes_per_msg", "delivery_writes_per_msg")


def _git(*argv: str) -> str:
    done = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench: git {' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


@dataclass
class OldTree:
    """The other ref's code, checked out for the run."""
    ref: str  # as given on the command line
    commit: str  # its short hash
    subject: str
    path: Path

    @property
    def label(self) -> str:
        return f"platform@{self.commit}"


def _pins(root: Path) -> list[str]:
    """The exact versions a tree pins in its requirements.txt (`name==version` lines)."""
    lines = (line.split("#")[0].strip() for line in (root / "requirements.txt").read_text().splitlines())
    return [line for line in lines if "==" in line]


def _missing_pins(root: Path) -> list[str]:
    """The pins of the tree at `root` that the bench venv does not have installed at that version."""
    missing = []
    for pin in _pins(root):
        name, _, version = pin.partition("==")
        try:
            installed = metadata.version(name.split("[")[0].strip())
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version.strip():
            missing.append(f"{pin} (bench venv: {installed or 'not installed'})")
    return missing


def checkout(ref: str) -> OldTree:
    """`git worktree add` of `ref` in a temporary directory.

    Refuses a ref pinning a package version the bench venv does not have: its code would run on
    other libraries than it was written for. Extra packages in the venv are fine (a venv per ref is
    not built, so the old code runs beside newer dependencies it does not import).
    """
    sha = _git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    path = Path(tempfile.mkdtemp(prefix="nl-bench-old-")) / "tree"
    _git("worktree", "add", "--detach", "--quiet", str(path), sha)
    tree = OldTree(ref, _git("rev-parse", "--short", sha), _git("log", "-1", "--format=%s", sha), path)
    missing = _missing_pins(path)
    if missing:
        remove(tree)
        raise SystemExit(f"bench: --compare {ref}: it pins versions the bench venv does not have, so it cannot "
                         f"run on it (a venv per ref is not built):\n  " + "\n  ".join(missing))
    return tree


def remove(tree: OldTree) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(tree.path)], cwd=ROOT, capture_output=True)
    shutil.rmtree(tree.path.parent, ignore_errors=True)
    subprocess.run(["git", "worktree", "prune"], cwd=ROOT, capture_output=True)


def run_in_child(ctx: Context, app_root: Path, label: str, n: int, knobs: dict, timeout: float, profile: bool,
                 round_no: int, profile_tag: str, dkim: str = "") -> dict:
    """One platform run of the code at `app_root` in a child process; its figures (or its error).
    `dkim`: the campaign's From domain has active keys of that kind (send_bench.py --dkim), on both sides."""
    db_url, db_name = platform_db.create_database()
    ctx.databases.append(db_name)
    stem = f"{label.replace('@', '-')}-r{round_no}-n{n}"
    spec_path, out_path, log = (ctx.workdir / f"{stem}{suffix}" for suffix in (".spec.json", ".out.json", ".log"))
    workdir = ctx.workdir / stem
    workdir.mkdir()
    spec_path.write_text(json.dumps({
        "app_root": str(app_root), "n": n, "knobs": knobs, "timeout": timeout, "profile": profile,
        "database": [db_url, db_name], "out": str(out_path), "workdir": str(workdir),
        "concurrency": ctx.concurrency, "pool": ctx.pool, "baseline_redis": ctx.baseline_redis,
        "platform_redis": ctx.platform_redis, "sessions": ctx.sessions,
        "profile_dir": str(ctx.profile_dir) if ctx.profile_dir else None, "tag": profile_tag, "dkim": dkim}))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(app_root)  # after bench/ (the script's directory), before site-packages
    child = ctx.children.start([sys.executable, str(Path(__file__)), "--child", str(spec_path)], log, env=env,
                               cwd=app_root)
    try:
        child.wait(timeout=timeout + SETUP_ALLOWANCE_S)
    except subprocess.TimeoutExpired:
        pass
    finally:
        # On a timeout or Ctrl-C too, and before its database goes: SIGTERM, and the child stops
        # its worker, beat and sink in its own `finally` (they are in sessions of their own,
        # which a kill of the child's group would not reach).
        Children.stop(child, grace=90)
        ctx.children.procs.remove(child)
        platform_db.drop_database(db_name)
        ctx.databases.remove(db_name)
    if out_path.exists():
        result = json.loads(out_path.read_text())
    else:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        result = {"n": n, "error": f"the child exited {child.returncode} without a result; log tail:\n{tail}"}
    result.update({"variant": label, "round": round_no})
    return result


def summarise(runs: list[dict]) -> dict:
    """A variant's figures at one N over its repeats: medians of the runs without an error."""
    good = [r for r in runs if not r.get("error") and r.get("msgs_per_s")]
    out: dict = {"n": runs[0].get("n"), "repeats": len(runs), "runs_counted": len(good), "runs": runs,
                 "knobs": runs[0].get("knobs"), "concurrency": runs[0].get("concurrency")}
    for name in MEDIAN_FIELDS:
        values = [r[name] for r in good if r.get(name) is not None]
        out[name] = round(statistics.median(values), 4) if values else None
    errors = [f"run {r.get('round')}: {r['error']}" for r in runs if r.get("error")]
    if errors:
        out["error"] = "; ".join(errors)
    return out


def ratios(new: dict, old: dict) -> dict:
    """new/old of the medians: above 1 the working tree is faster."""
    def div(a, b):
        return round(a / b, 4) if a and b else None
    return {"new_msgs_per_s": new.get("msgs_per_s"), "old_msgs_per_s": old.get("msgs_per_s"),
            "new_over_old": div(new.get("msgs_per_s"), old.get("msgs_per_s")),
            "new_over_old_steady": div(new.get("steady_msgs_per_s"), old.get("steady_msgs_per_s"))}


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def child_main(spec_path: Path) -> int:
    """The child: prepare and run one platform run with the `newsletter` on PYTHONPATH, write its figures."""
    signal.signal(signal.SIGTERM, _interrupt)  # the parent's stop: clean up like Ctrl-C
    spec = json.loads(spec_path.read_text())
    app_root = Path(spec["app_root"])
    ctx = Context(Children(), Path(spec["workdir"]), spec["concurrency"], spec["pool"], spec["baseline_redis"],
                  spec["platform_redis"], sessions=spec["sessions"],
                  profile_dir=Path(spec["profile_dir"]) if spec["profile_dir"] else None, tag=spec["tag"],
                  app_root=app_root)
    result: dict = {"n": spec["n"]}
    setup = None
    try:
        import newsletter

        imported = Path(newsletter.__file__).resolve()
        if not imported.is_relative_to(app_root.resolve()):  # the whole point: measure that tree's code
            raise RuntimeError(f"newsletter imported from {imported}, not from {app_root}")
        setup = platform_run.prepare(ctx, spec["n"], spec["knobs"], database=tuple(spec["database"]),
                                      dkim=spec.get("dkim", ""))
        result = platform_run.run(ctx, setup, spec["timeout"], spec["profile"])
        result.update({"code_root": str(app_root), "message_source": setup.sample.get("source"),
                       "profile_tag": spec["tag"] if spec["profile"] else None})
    except BaseException as exc:  # KeyboardInterrupt too: the parent still reads what happened
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()[-4000:]
    finally:
        ctx.children.stop_all()
        if setup is not None:
            with setup.app.app_context():
                from newsletter.extensions import db

                db.session.remove()
                db.engine.dispose()  # the parent drops the database next
        Path(spec["out"]).write_text(json.dumps(result))
    return 1 if result.get("error") else 0


if __name__ == "__main__" and sys.argv[1:2] == ["--child"]:
    sys.exit(child_main(Path(sys.argv[2])))

"""Several "hosts" on one machine: Linux network namespaces joined by a bridge, with addresses in
198.18.0.0/15 only (the benchmarking range, never routed), for tests that run the platform across
hosts and cut one host's link.

Each host is a namespace with its loopback and one veth into a bridge that lives in the root
namespace without an address: the hosts reach each other, and nothing else (no route out, no
address of the machine's). Processes run in a host with `ip netns exec`; the filesystem is
shared, so a test reads files a host writes (logs, the SMTP recorder's log). Everything made is
removed by `close()`, also after a failure.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from .net import wait_for

SUBNET = "198.18.0.0/15"
PG_BIN = Path("/usr/lib/postgresql")


def available() -> str | None:
    """None if this machine can make namespaces (root, iproute2, PostgreSQL and Redis binaries), else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "redis-server", "runuser"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not _pg_bin():
        return "PostgreSQL's server binaries are not installed"
    probe = f"nlprobe{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _pg_bin() -> Path | None:
    versions = sorted(PG_BIN.glob("*/bin/postgres"))
    return versions[-1].parent if versions else None


def _run(*argv: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")


class Network:
    """Hosts by name, each with one address; `exec` runs a process in a host, `cut` unplugs one."""

    def __init__(self, hosts: Mapping[str, str]) -> None:
        self.tag = uuid.uuid4().hex[:5]
        self.bridge = f"nlbr{self.tag}"
        self.addresses = dict(hosts)
        self.namespaces = {name: f"nl-{self.tag}-{name}" for name in hosts}
        self.links = {name: f"nlv{self.tag}{i}" for i, name in enumerate(hosts)}  # root side of each veth
        self.workdir = Path(tempfile.mkdtemp(prefix=f"nl-net-{self.tag}-"))
        self.processes: list[subprocess.Popen] = []

    def __enter__(self) -> Network:
        try:
            _run("ip", "link", "add", self.bridge, "type", "bridge")
            _run("ip", "link", "set", self.bridge, "up")
            for name, address in self.addresses.items():
                ns, link, inner = self.namespaces[name], self.links[name], f"{self.links[name]}x"
                _run("ip", "netns", "add", ns)
                _run("ip", "link", "add", link, "type", "veth", "peer", "name", inner)
                _run("ip", "link", "set", inner, "netns", ns)
                _run("ip", "link", "set", link, "master", self.bridge)
                _run("ip", "link", "set", link, "up")
                _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
                _run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{address}/15", "dev", inner)
                _run("ip", "netns", "exec", ns, "ip", "link", "set", inner, "up")
        except Exception:
            self.close()
            raise
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        if kind is not None:  # the hosts' logs go with the workdir: show their ends first
            for path in sorted(self.workdir.glob("*.log")):
                print(f"\n----- {path.name} (end)\n{path.read_text(errors='replace')[-2500:]}")
        self.close()

    def exec(self, host: str, argv: Sequence[str], env: Mapping[str, str] | None = None, log: str = "",
             user: str = "") -> subprocess.Popen:
        """Start `argv` in `host` (its own process group), output to workdir/<log>.log."""
        prefix = ["ip", "netns", "exec", self.namespaces[host]] + (["runuser", "-u", user, "--"] if user else [])
        out = open(self.workdir / f"{log or host}.log", "ab")  # noqa: SIM115 (the child keeps it)
        process = subprocess.Popen([*prefix, *argv], env=dict(env or os.environ), stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True,
                                   cwd=Path(__file__).resolve().parents[2])
        out.close()
        self.processes.append(process)
        return process

    def run(self, host: str, argv: Sequence[str], env: Mapping[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        """Run `argv` in `host` to the end; its output in the result."""
        return subprocess.run(["ip", "netns", "exec", self.namespaces[host], *argv], env=dict(env or os.environ),
                              capture_output=True, text=True, timeout=timeout,
                              cwd=Path(__file__).resolve().parents[2])

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def cut(self, host: str) -> None:
        """Unplug the host: its veth goes down; it reaches nobody and nobody reaches it."""
        _run("ip", "link", "set", self.links[host], "down")

    def reachable(self, host: str, address: str, port: int) -> bool:
        probe = self.run(host, ["bash", "-c", f"exec 3<>/dev/tcp/{address}/{port}"], timeout=10)
        return probe.returncode == 0

    def close(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait()
        for ns in self.namespaces.values():  # daemons that left the process group (RabbitMQ's epmd, beam)
            found = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in found:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for link in self.links.values():
            subprocess.run(["ip", "link", "del", link], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        shutil.rmtree(self.workdir, ignore_errors=True)

    # Servers on a host ---------------------------------------------------------------------------

    def start_postgres(self, host: str, port: int = 5432) -> str:
        """A fresh PostgreSQL cluster listening on the host's address (trust auth from the subnet); its URL."""
        data = self.workdir / "pgdata"
        data.mkdir()
        shutil.chown(data, "postgres", "postgres")
        os.chmod(self.workdir, 0o755)
        bin_dir = _pg_bin()
        assert bin_dir is not None
        _run("runuser", "-u", "postgres", "--", str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U",
             "postgres", "--no-sync")
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {SUBNET} trust\n")
        address = self.addresses[host]
        self.exec(host, [str(bin_dir / "postgres"), "-D", str(data), "-k", str(data), "-p", str(port),
                         "-c", f"listen_addresses={address}", "-c", "fsync=off", "-c", "max_connections=200"],
                  log="postgres", user="postgres")
        wait_for(lambda: self.run(host, [str(bin_dir / "pg_isready"), "-h", address, "-p", str(port), "-U", "postgres"],
                                  timeout=10).returncode == 0, 60, interval=0.3, message="PostgreSQL in its namespace")
        return f"postgresql://postgres@{address}:{port}/postgres"

    def start_redis(self, host: str, port: int = 6379) -> str:
        address = self.addresses[host]
        # Protected mode refuses every other host; the namespaces are the protection here.
        self.exec(host, ["redis-server", "--bind", address, "--port", str(port), "--save", "", "--appendonly", "no",
                         "--protected-mode", "no",
                         "--dir", str(self.workdir)], log="redis")
        wait_for(lambda: self.reachable(host, address, port), 30, interval=0.2, message="Redis in its namespace")
        return f"redis://{address}:{port}"

    def start_rabbitmq(self, host: str, port: int = 5672) -> str:
        """A RabbitMQ node of its own in the host (its own epmd, node name and files); guest may
        log in from the subnet."""
        address = self.addresses[host]
        base = self.workdir / "rabbitmq"
        base.mkdir()
        conf = base / "rabbitmq.conf"
        conf.write_text(f"listeners.tcp.default = {address}:{port}\nloopback_users = none\n")
        env = {**os.environ, "RABBITMQ_NODENAME": f"nl{self.tag}@localhost", "RABBITMQ_CONFIG_FILE": str(conf),
               "RABBITMQ_MNESIA_BASE": str(base / "mnesia"), "RABBITMQ_LOG_BASE": str(base / "log"),
               "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "plugins"), "RABBITMQ_DIST_PORT": "25672"}
        (base / "plugins").write_text("[].\n")
        for path in (base, conf, base / "plugins"):  # rabbitmq-server runs as its own user, even from root
            shutil.chown(path, "rabbitmq", "rabbitmq")
        self.exec(host, ["rabbitmq-server"], env=env, log="rabbitmq")
        wait_for(lambda: self.reachable(host, address, port), 90, interval=0.5, message="RabbitMQ in its namespace")
        return f"amqp://guest:guest@{address}:{port}//"

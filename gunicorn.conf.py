"""Gunicorn settings shared by the Procfile's `web` and `make run` (gunicorn reads this file
from its working directory; the command line still sets bind, workers and the log target).

The logger: the access log must not hold the signed tokens of subscriber links
(/unsubscribe/<token>, /preferences/<token>, ...) nor of tracked links (/o/, /c/): the rule
lives in newsletter/redaction.py, which the app's own logger uses too.

Metrics (docs/operations.md): the master chooses its workers' shared metrics folder and empties
it as it starts; a worker that exits has its live gauges dropped (counters stay).

With LOG_FORMAT=json, gunicorn's own lines and the access lines are JSON objects like the app's
(newsletter/observability/logs.py); an access line carries the request's X-Request-ID.
"""
from __future__ import annotations

import os
import time

from gunicorn.config import AccessLogFormat
from gunicorn.glogging import Logger

from newsletter.metrics import multiproc
from newsletter.observability.logs import use_json
from newsletter.redaction import redact

JSON = (os.environ.get("LOG_FORMAT") or "").strip().lower() == "json"


class RedactingLogger(Logger):
    """gunicorn's logger, with every string it may write into an access line redacted.

    With the default (combined) format, only the atoms that format writes are made, and only
    those a client controls are redacted: the request line, the user, the referer and the user
    agent. gunicorn's own `atoms` makes ~40 (every header and environ variable) and redacting them
    all cost a fifth of a tracked redirect's CPU (bench/README.md). Any other format gets every atom,
    each redacted."""

    _second = -1
    _stamp = ""

    def setup(self, cfg):
        super().setup(cfg)
        if JSON:
            use_json(self.error_log)
            use_json(self.access_log)

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        if JSON:
            self.json_access(resp, environ, request_time)
            return
        if self.cfg.access_log_format != AccessLogFormat.default:
            super().access(resp, req, environ, request_time)
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        sent = getattr(resp, "sent", None)
        atoms = {"h": environ.get("REMOTE_ADDR", "-"), "l": "-", "u": redact(self._get_user(environ) or "-"),
                 "t": self.now(), "r": redact(f"{environ['REQUEST_METHOD']} {environ['RAW_URI']} "
                                              f"{environ['SERVER_PROTOCOL']}"),
                 "s": status, "b": str(sent) if sent is not None else "-",
                 "f": redact(environ.get("HTTP_REFERER", "-")), "a": redact(environ.get("HTTP_USER_AGENT", "-"))}
        try:
            self.access_log.info(self.cfg.access_log_format, atoms)
        except Exception:  # as gunicorn's own: a log line never fails the request
            self.exception("access log line failed")

    def json_access(self, resp, environ, request_time):
        """One JSON access line: the same fields as the combined format, redacted the same way."""
        status = str(resp.status).split(None, 1)[0]
        line = redact(f"{environ['REQUEST_METHOD']} {environ['RAW_URI']}")
        fields = {"remote_addr": environ.get("REMOTE_ADDR", "-"), "status": int(status) if status.isdigit() else status,
                  "bytes": getattr(resp, "sent", None), "duration_ms": round(request_time.total_seconds() * 1000, 1),
                  "referer": redact(environ.get("HTTP_REFERER", "-")),
                  "user_agent": redact(environ.get("HTTP_USER_AGENT", "-"))}
        request_id = next((value for name, value in resp.headers if name.lower() == "x-request-id"), None)
        if request_id:
            fields["request_id"] = request_id
        try:
            self.access_log.info("%s %s", line, status, extra=fields)
        except Exception:  # as gunicorn's own: a log line never fails the request
            self.exception("access log line failed")

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        return {key: redact(value) if isinstance(value, str) else value for key, value in atoms.items()}

    def now(self):
        """gunicorn's "[06/Dec/2026:19:42:04 +0000]", made once a second rather than per line."""
        second = int(time.time())
        if second != self._second:
            self._stamp, self._second = time.strftime("[%d/%b/%Y:%H:%M:%S %z]"), second
        return self._stamp


logger_class = RedactingLogger


def on_starting(server):
    """Master, once, before any worker (and so before the app and prometheus_client are imported)."""
    multiproc.activate("web-" + (server.cfg.bind[0] if server.cfg.bind else "default"), fresh=True)


def child_exit(server, worker):
    multiproc.process_dead(worker.pid)

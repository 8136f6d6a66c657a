"""An SMTP server for a host of tests/support/netns.py: accepts everything and appends one line
per accepted recipient to a file the test reads (the filesystem is shared across namespaces).

    python -m tests.support.netns_smtp ADDRESS PORT LOGFILE
"""
from __future__ import annotations

import signal
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class LineRecorder:
    def __init__(self, path: str) -> None:
        self.out = open(path, "a", buffering=1)  # noqa: SIM115 (open for the server's life)
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.out.write(f"{rcpt}\n")
        return "250 OK"


def main(address: str, port: str, path: str) -> None:
    controller = Controller(LineRecorder(path), hostname=address, port=int(port), ready_timeout=30)
    controller.start()
    print(f"smtp recorder on {address}:{port}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    controller.stop()


if __name__ == "__main__":
    main(*sys.argv[1:4])

"""A Sentry ingest endpoint on loopback: records every envelope the SDK posts, decoded.

The DSN `http://key@127.0.0.1:<port>/1` makes sentry-sdk post to /api/1/envelope/ here: a
gzip (or plain) body holding one JSON header line, then items, each a JSON header line and a
payload (`length` bytes when the header says, else up to the next newline).
"""
from __future__ import annotations

import gzip
import json
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .net import free_port


def parse_envelope(raw: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """The (item header, payload) pairs of one envelope (the envelope's own header skipped)."""
    _, _, rest = raw.partition(b"\n")
    items = []
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        header = json.loads(header_line)
        if "length" in header:
            payload, rest = rest[:header["length"]], rest[header["length"]:]
            rest = rest[1:] if rest.startswith(b"\n") else rest
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((header, payload))
    return items


class SentryReceiver:
    def __init__(self) -> None:
        self.bodies: list[bytes] = []  # every request body, decompressed
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                receiver.paths.append(self.path)
                receiver.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def dsn(self) -> str:
        return f"http://key@127.0.0.1:{self.server.server_port}/1"

    def items(self, kind: str) -> list[dict[str, Any]]:
        """The items of one type received so far: `event` (errors), `transaction` (traces)..."""
        return [json.loads(payload) for body in list(self.bodies) for header, payload in parse_envelope(body)
                if header.get("type") == kind]

    def events(self) -> list[dict[str, Any]]:
        return self.items("event")

    def __enter__(self) -> SentryReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

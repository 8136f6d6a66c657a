"""A loopback TCP relay a test can cut like a dropped network link (the fault suite's network cut).

Point one process at the relay instead of a server (Redis, PostgreSQL, SMTP); `cut()` then
behaves like a partition, not like a crash: connections stay open (no FIN, no RST), bytes in
either direction are swallowed, new connections are accepted and left hanging. The process
only learns of it from its own timeouts. There is no healing: a cut link stays cut.
"""
from __future__ import annotations

import socket
import threading


class CuttableLink:
    """Listens on 127.0.0.1:<port>; relays to `target`: (host, port), or a unix socket path."""

    def __init__(self, target: tuple[str, int] | str) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.is_cut = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self.is_cut.set()

    def close(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in [self.listener, *sockets]:
            try:
                sock.close()
            except OSError:
                pass

    def _keep(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
        return sock

    def _upstream(self) -> socket.socket:
        if isinstance(self.target, str):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(self.target)
            return sock
        return socket.create_connection(self.target, timeout=5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            self._keep(client)
            if self.is_cut.is_set():
                threading.Thread(target=self._pump, args=(client, None), daemon=True).start()
                continue
            try:
                upstream = self._keep(self._upstream())
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket | None) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                if sink is not None and not self.is_cut.is_set():
                    try:
                        sink.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                return
            if sink is None or self.is_cut.is_set():
                continue  # lost on the cut link
            try:
                sink.sendall(data)
            except OSError:
                return

"""A tiny authoritative DNS server on loopback (UDP and TCP) for tests: TXT and A records from a dict.

Tests never ask the real DNS: the pre-flight checks (DNS_RESOLVER) and the independent DKIM
verifier (Mail::DKIM through Net::DNS) are pointed at this server, which answers NXDOMAIN for
any name it was not given. Records can be changed while it runs (`server.records[...] = ...`).
"""
from __future__ import annotations

import socketserver
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


def _txt_strings(value: str) -> list[str]:
    # One TXT string holds at most 255 bytes: a long record (a DKIM key) is split into several.
    return [value[i:i + 255] for i in range(0, len(value), 255)] or [""]


class DnsServer:
    def __init__(self) -> None:
        # (name without the final dot, lower case, "TXT" | "A") -> values
        self.records: dict[tuple[str, str], list[str]] = {}
        self.queries: list[tuple[str, str]] = []
        self.port = 0

    def txt(self, name: str, *values: str) -> None:
        self.records[(name.lower().rstrip("."), "TXT")] = list(values)

    def answer(self, wire: bytes) -> bytes:
        query = dns.message.from_wire(wire)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        kind = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, kind))
        values = self.records.get((name, kind))
        if not values:  # NOERROR with no answer when the name has other records (or an emptied list)
            known = any(key[0] == name for key in self.records)
            response.set_rcode(dns.rcode.NOERROR if known else dns.rcode.NXDOMAIN)
            return response.to_wire()
        if kind == "TXT":
            texts = [" ".join(f'"{s}"' for s in _txt_strings(v)) for v in values]
        else:
            texts = values
        response.answer.append(dns.rrset.from_text_list(question.name, 60, dns.rdataclass.IN, question.rdtype, texts))
        return response.to_wire()


@contextmanager
def dns_server() -> Iterator[DnsServer]:
    """A running server on 127.0.0.1 (one port, UDP and TCP); `server.port` is its port."""
    server = DnsServer()

    class Udp(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            data, sock = self.request
            sock.sendto(server.answer(data), self.client_address)

    class Tcp(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            head = self.request.recv(2)
            if len(head) < 2:
                return
            (size,) = struct.unpack("!H", head)
            data = b""
            while len(data) < size:
                chunk = self.request.recv(size - len(data))
                if not chunk:
                    return
                data += chunk
            reply = server.answer(data)
            self.request.sendall(struct.pack("!H", len(reply)) + reply)

    tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Tcp)
    tcp.daemon_threads = True
    server.port = tcp.server_address[1]
    udp = socketserver.ThreadingUDPServer(("127.0.0.1", server.port), Udp)
    udp.daemon_threads = True
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
               for s in (tcp, udp)]
    for thread in threads:
        thread.start()
    try:
        yield server
    finally:
        for s in (tcp, udp):
            s.shutdown()
            s.server_close()


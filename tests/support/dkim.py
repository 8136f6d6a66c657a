"""Independent DKIM verifiers for tests, both asking the test's loopback DNS server.

`mail_dkim`: Debian's Mail::DKIM (libmail-dkim-perl, Perl), the reference; it checks RSA
signatures (this Debian version has no Ed25519). `dkimpy`: a second implementation, for Ed25519.
Neither shares code with newsletter.services.deliverability.dkim, which signs with `cryptography`.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import dns.resolver

SCRIPT = Path(__file__).with_name("dkim_verify.pl")


def mail_dkim(message: bytes, dns_port: int) -> tuple[str, list[str]]:
    """(overall result, one line per signature: "<result> d=... s=... a=... <detail>")."""
    done = subprocess.run(["perl", str(SCRIPT), "127.0.0.1", str(dns_port)], input=message, capture_output=True,
                          timeout=60)
    assert done.returncode == 0, f"Mail::DKIM failed (apt-get install libmail-dkim-perl?): {done.stderr.decode()}"
    lines = done.stdout.decode().splitlines()
    assert lines and lines[-1].startswith("overall "), lines
    return lines[-1].split()[1], lines[:-1]


def dkimpy(message: bytes, dns_port: int, index: int = 0) -> bool:
    """Whether dkimpy verifies the message's `index`-th DKIM-Signature (0: the first, topmost)."""
    import dkim

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers, resolver.port, resolver.lifetime = ["127.0.0.1"], dns_port, 5.0

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        answer = resolver.resolve(name.decode().rstrip("."), "TXT", raise_on_no_answer=False)
        return b"".join(b"".join(r.strings) for r in answer)

    return dkim.DKIM(message).verify(idx=index, dnsfunc=lookup)

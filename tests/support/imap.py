"""A real IMAP server for tests: Debian's dovecot, started on a free loopback port with its own
configuration and a Maildir the test fills (files written straight into Maildir/new, as a
local delivery agent would), plain-text login allowed on loopback.

Run as root (as in CI containers), dovecot refuses to give mail to uid 0 and to run its login
process as root: the mail then belongs to `nobody` and the login process is `dovenull`, the
users the Debian package creates; as anyone else, everything runs as the current user.
"""
from __future__ import annotations

import grp
import imaplib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

from .net import free_port, wait_for

DOVECOT = "/usr/sbin/dovecot"
USER, PASSWORD = "bounces", "s3cret/p@ss:word"  # percent-encoded in the URL


class DovecotServer:
    def __init__(self, advertise_move: bool = True) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="nl-imap-"))
        self.root.chmod(0o755)  # the mail user (nobody, when run as root) must reach its home
        self.port = free_port()
        self.advertise_move = advertise_move
        self.process: subprocess.Popen | None = None
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            self.uid, self.gid = nobody.pw_uid, nobody.pw_gid
            self.login_user, self.internal_user, self.internal_group = "dovenull", "dovecot", "dovecot"
        else:
            self.uid, self.gid = os.getuid(), os.getgid()
            self.login_user = self.internal_user = pwd.getpwuid(os.getuid()).pw_name
            self.internal_group = grp.getgrgid(os.getgid()).gr_name
        self.maildir = self.root / "home" / USER / "Maildir"
        self._serial = 0

    @property
    def url(self) -> str:
        return f"imap://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{self.port}/INBOX"

    def _config(self) -> str:
        # Without MOVE in the list the client must fall back to COPY + \Deleted + UID EXPUNGE.
        capability = "" if self.advertise_move else (
            "imap_capability = IMAP4rev1 SASL-IR LITERAL+ ID ENABLE IDLE UIDPLUS NAMESPACE CHILDREN LIST-EXTENDED\n")
        return f"""
protocols = imap
listen = 127.0.0.1
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 0
passdb {{
  driver = static
  args = password={PASSWORD}
}}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={self.root}/home/%u
}}
mail_location = maildir:~/Maildir
default_login_user = {self.login_user}
default_internal_user = {self.internal_user}
default_internal_group = {self.internal_group}
{capability}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""

    def start(self) -> DovecotServer:
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        self._own(self.root / "home")
        (self.root / "run").mkdir()
        conf = self.root / "dovecot.conf"
        conf.write_text(self._config())
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._greets, 60, message="dovecot to accept connections")  # generous: a busy CI machine
        return self

    def _greets(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"dovecot exited: {self.log()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                return sock.recv(100).startswith(b"* OK")
        except OSError:
            return False

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            for folder, _, files in os.walk(path):
                os.chown(folder, self.uid, self.gid)
                for name in files:
                    os.chown(os.path.join(folder, name), self.uid, self.gid)

    def deliver(self, *messages: bytes) -> None:
        """Put messages in INBOX the way a delivery agent does: written to tmp/, renamed into new/."""
        for raw in messages:
            self._serial += 1
            name = f"{int(time.time())}.M{self._serial}P{os.getpid()}_{uuid.uuid4().hex[:8]}.nltest"
            tmp = self.maildir / "tmp" / name
            tmp.write_bytes(raw.replace(b"\r\n", b"\n"))
            if os.geteuid() == 0:
                os.chown(tmp, self.uid, self.gid)
            tmp.rename(self.maildir / "new" / name)

    def session(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
        conn.login(USER, PASSWORD)
        return conn

    def folders(self) -> dict[str, int]:
        """Message count per folder, as the server reports it (\\Deleted ones included)."""
        conn = self.session()
        try:
            _, listed = conn.list()
            names = [line.decode().rsplit(" ", 1)[-1].strip('"') for line in listed if line]
            counts = {}
            for name in names:
                _, data = conn.status(f'"{name}"', "(MESSAGES)")
                counts[name] = int(data[0].decode().rsplit("MESSAGES", 1)[1].strip(" )"))
            return counts
        finally:
            conn.logout()

    def messages(self, folder: str) -> list[bytes]:
        """The messages in `folder`, without marking them seen."""
        conn = self.session()
        try:
            conn.select(f'"{folder}"', readonly=True)
            _, data = conn.uid("SEARCH", "ALL")
            uids = (data[0] or b"").split()
            if not uids:
                return []
            _, fetched = conn.uid("FETCH", b",".join(uids).decode(), "(BODY.PEEK[])")
            return [item[1] for item in fetched if isinstance(item, tuple)]
        finally:
            conn.logout()

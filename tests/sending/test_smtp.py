"""The SMTP transport against a real server: pipelined or not, refusals classified, the fence obeyed."""
import email
import email.policy
import tempfile

import pytest

from newsletter.sending.errors import Kind, SmtpFailure
from newsletter.sending.message import build
from newsletter.sending.smtp import Connection, FenceClosed, Sessions, SmtpSettings
from tests.support.smtp import RecordingSmtpServer


class Fence:
    def __init__(self, allow: bool = True) -> None:
        self.allow, self.calls = allow, []

    def acquire(self) -> bool:
        self.calls.append("acquire")
        return self.allow

    def commit_async(self) -> None:
        self.calls.append("commit")

    def confirm(self) -> None:
        self.calls.append("confirm")


def message(to: str):
    return build(from_name="News", from_email="news@example.com", to=to, subject="Hi", html="<p>.hi</p>",
                 text=".starts with a dot\n.\n", message_id="<1@example.com>")


@pytest.fixture(params=[True, False], ids=["pipelining", "one-by-one"])
def server(request):
    server = RecordingSmtpServer(tempfile.mkdtemp(prefix="smtp-"), pipelining=request.param).start()
    yield server
    server.stop()


def test_messages_go_out_on_one_reused_connection_in_either_mode(server):
    connection = Connection(SmtpSettings("127.0.0.1", server.port, timeout=5))
    fence = Fence()
    for i in range(3):
        assert connection.send(message(f"r{i}@example.com"), fence)[0] == 250
    assert connection.pipelining is server.handler.pipelining
    assert fence.calls == ["acquire", "commit", "confirm"] * 3
    raw = server.handler.received["r1@example.com"][0]
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed.get_body(("plain",)).get_content() == ".starts with a dot\n.\n"  # a lone "." ends nothing
    connection.close()


@pytest.mark.parametrize("reply, kind", [
    ("550 5.1.1 No such user", Kind.PERMANENT), ("450 4.2.0 Mailbox busy", Kind.TRANSIENT),
    ("421 4.7.0 Slow down", Kind.THROTTLED),
])
def test_a_refused_recipient_is_classified_and_the_connection_stays_usable(server, reply, kind):
    server.handler.rcpt_rule = lambda rcpt: reply if rcpt.startswith("bad") else None
    connection = Connection(SmtpSettings("127.0.0.1", server.port, timeout=5))
    with pytest.raises(SmtpFailure) as failure:
        connection.send(message("bad@example.com"), Fence())
    assert (failure.value.kind, failure.value.code) == (kind, int(reply[:3]))
    assert "bad@example.com" not in server.handler.received
    if kind != Kind.THROTTLED:  # 421 closes the session; the next send reconnects
        assert connection.send(message("good@example.com"), Fence())[0] == 250
        assert len(server.handler.received["good@example.com"]) == 1


def test_a_closed_fence_sends_no_final_dot_and_nothing_is_delivered(server):
    connection = Connection(SmtpSettings("127.0.0.1", server.port, timeout=5))
    with pytest.raises(FenceClosed):
        connection.send(message("lost-claim@example.com"), Fence(allow=False))
    assert connection.send(message("next@example.com"), Fence())[0] == 250  # reconnects by itself
    assert "lost-claim@example.com" not in server.handler.received
    assert len(server.handler.received["next@example.com"]) == 1


def test_an_unreachable_server_is_marked_so_nobody_is_blamed():
    from tests.support.net import free_port

    with pytest.raises(SmtpFailure) as failure:
        Connection(SmtpSettings("127.0.0.1", free_port(), timeout=2)).send(message("a@example.com"), Fence())
    assert failure.value.unreachable and failure.value.kind == Kind.TRANSIENT


def test_a_server_greeting_with_421_counts_as_unreachable_before_any_fence():
    """What makes a pool fail over: the 4xx greeting of a busy server is `unreachable`."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def greet_busy() -> None:
        conn, _ = listener.accept()
        conn.sendall(b"421 4.3.2 Too busy, try another server\r\n")
        conn.close()

    threading.Thread(target=greet_busy, daemon=True).start()
    fence = Fence()
    try:
        with pytest.raises(SmtpFailure) as failure:
            Connection(SmtpSettings("127.0.0.1", port, timeout=2)).send(message("a@example.com"), fence)
    finally:
        listener.close()
    assert failure.value.unreachable and failure.value.code == 421 and fence.calls == []


def test_an_internationalised_address_goes_out_with_smtputf8(server):
    connection = Connection(SmtpSettings("127.0.0.1", server.port, timeout=5))
    assert connection.send(message("chloé@exämple.org"), Fence())[0] == 250
    raw = server.handler.received["chloé@exämple.org"][0]
    assert email.message_from_bytes(raw, policy=email.policy.default)["To"] == "chloé@exämple.org"


def test_without_smtputf8_an_internationalised_address_fails_alone():
    server = RecordingSmtpServer(tempfile.mkdtemp(prefix="smtp-"), smtputf8=False).start()
    try:
        connection = Connection(SmtpSettings("127.0.0.1", server.port, timeout=5))
        with pytest.raises(SmtpFailure) as failure:
            connection.send(message("chloé@example.org"), Fence())
        assert failure.value.kind == Kind.PERMANENT and "SMTPUTF8" in failure.value.message
        assert connection.send(message("plain@example.org"), Fence())[0] == 250  # nothing else is affected
    finally:
        server.stop()


# Sessions: several connections side by side, one fence per round ----------------------------

class GroupFence:
    def __init__(self, refuse: tuple[int, ...] = (), error: Exception | None = None) -> None:
        self.refuse, self.error, self.calls = refuse, error, []

    def acquire(self, keys: list[int]) -> set[int]:
        self.calls.append(("acquire", list(keys)))
        if self.error:
            raise self.error
        return {k for k in keys if k not in self.refuse}

    def commit_async(self) -> None:
        self.calls.append("commit")

    def confirm(self) -> None:
        self.calls.append("confirm")


def _round(keys, prefix="r"):
    return [(k, message(f"{prefix}{k}@example.com")) for k in keys]


def test_a_round_hands_one_message_to_each_session_behind_one_fence(server):
    sessions = Sessions(SmtpSettings("127.0.0.1", server.port, timeout=5), 4)
    fence = GroupFence()
    results = sessions.send(_round([1, 2, 3, 4]), fence)
    assert [r[0] for r in results] == [250] * 4
    assert fence.calls == [("acquire", [1, 2, 3, 4]), "commit", "confirm"]  # one database round trip
    assert all(c.smtp is not None for c in sessions.connections)  # four sessions, side by side
    assert sessions.send(_round([5, 6]), GroupFence())[1][0] == 250  # a short round reuses them
    assert sorted(server.handler.received) == [f"r{k}@example.com" for k in range(1, 7)]
    assert all(len(v) == 1 for v in server.handler.received.values())
    raw = server.handler.received["r3@example.com"][0]
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed.get_body(("plain",)).get_content() == ".starts with a dot\n.\n"
    sessions.close()


def test_rows_the_fence_no_longer_owns_get_no_final_dot_and_the_others_go(server):
    sessions = Sessions(SmtpSettings("127.0.0.1", server.port, timeout=5), 3)
    results = sessions.send(_round([1, 2, 3]), GroupFence(refuse=(2,)))
    assert isinstance(results[1], FenceClosed) and results[0][0] == results[2][0] == 250
    assert sessions.send(_round([4, 5, 6]), GroupFence())[1][0] == 250  # the dropped session reconnects
    assert "r2@example.com" not in server.handler.received
    assert sorted(server.handler.received) == ["r1@example.com", "r3@example.com", "r4@example.com",
                                               "r5@example.com", "r6@example.com"]


def test_a_refused_recipient_fails_alone_and_is_never_fenced(server):
    server.handler.rcpt_rule = lambda rcpt: "550 5.1.1 No such user" if rcpt.startswith("r2") else None
    sessions = Sessions(SmtpSettings("127.0.0.1", server.port, timeout=5), 3)
    fence = GroupFence()
    results = sessions.send(_round([1, 2, 3]), fence)
    assert isinstance(results[1], SmtpFailure) and results[1].kind == Kind.PERMANENT and results[1].code == 550
    assert fence.calls[0] == ("acquire", [1, 3])
    assert sorted(server.handler.received) == ["r1@example.com", "r3@example.com"]


def test_a_fence_that_fails_drops_every_unfinished_message():
    server = RecordingSmtpServer(tempfile.mkdtemp(prefix="smtp-")).start()
    try:
        sessions = Sessions(SmtpSettings("127.0.0.1", server.port, timeout=5), 3)
        with pytest.raises(RuntimeError):
            sessions.send(_round([1, 2, 3]), GroupFence(error=RuntimeError("database gone")))
        assert all(c.smtp is None for c in sessions.connections)  # no dot was ever written
        assert [r[0] for r in sessions.send(_round([4, 5, 6]), GroupFence())] == [250] * 3
        assert sorted(server.handler.received) == ["r4@example.com", "r5@example.com", "r6@example.com"]
    finally:
        server.stop()


def test_an_unreachable_server_fails_the_whole_round_after_one_connect():
    from tests.support.net import free_port

    sessions = Sessions(SmtpSettings("127.0.0.1", free_port(), timeout=2), 4)
    fence = GroupFence()
    results = sessions.send(_round([1, 2, 3, 4]), fence)
    assert all(isinstance(r, SmtpFailure) and r.unreachable for r in results)
    assert len({id(r) for r in results}) == 1  # one connect attempt, its failure shared
    assert fence.calls == []


@pytest.mark.parametrize("address", ["a@b.com", "chloé@exämple.org", "x+y@z.io", "Name <a@b.com>", "a b@c.d", "",
                                     "a\r\nRCPT TO:<x@y>@b.c", '"q"@x.com', "a@[1.2.3.4]", "weird@@x"])
def test_envelope_addresses_are_quoted_as_smtplib_quotes_them(address):
    import smtplib

    from newsletter.sending.smtp import _angle

    assert _angle(address) == smtplib.quoteaddr(address)


def test_raw_lines_starting_with_a_dot_are_stuffed_and_arrive_intact(server):
    from newsletter.sending.message import Envelope

    data = b"Subject: dots\r\n\r\n.first\r\nmiddle\r\n.\r\n..two\r\nlast"
    connection = Connection(SmtpSettings("127.0.0.1", server.port, timeout=5))
    assert connection.send(Envelope("news@example.com", "dots@example.com", data), Fence())[0] == 250
    raw = server.handler.received["dots@example.com"][0]
    assert raw.replace(b"\r\n", b"\n").rstrip(b"\n").endswith(b".first\nmiddle\n.\n..two\nlast")


def test_sessions_the_server_closed_while_idle_reconnect_once_and_send(server):
    connection = Connection(SmtpSettings("127.0.0.1", server.port, timeout=5))
    sessions = Sessions(SmtpSettings("127.0.0.1", server.port, timeout=5), 2)
    assert connection.send(message("before@example.com"), Fence())[0] == 250
    assert [r[0] for r in sessions.send(_round([1, 2]), GroupFence())] == [250, 250]
    server.stop()  # every open session is cut, as a server's idle timeout would
    server.restart()
    assert connection.send(message("after@example.com"), Fence())[0] == 250
    assert [r[0] for r in sessions.send(_round([3, 4]), GroupFence())] == [250, 250]
    assert sorted(server.handler.received) == ["after@example.com", "before@example.com", "r1@example.com",
                                               "r2@example.com", "r3@example.com", "r4@example.com"]
    assert all(len(v) == 1 for v in server.handler.received.values())

"""gunicorn, started as the Procfile starts it, keeps subscriber-link tokens out of its access log."""
from __future__ import annotations

import os
import subprocess
import urllib.error
import urllib.request

from newsletter.devserver.runner import commands
from newsletter.redaction import redact
from newsletter.services.audience import tokens
from newsletter.services.audience.subscribers import create as create_subscriber
from tests.support.net import free_port, wait_for
from tests.support.processes import BIN, ROOT, stop


def fetch(url: str, **headers: str) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except urllib.error.URLError:
        return 0  # not listening yet


def test_the_access_log_shows_the_path_shape_but_never_the_token(app, platform_env, tmp_path):
    with app.app_context():
        subscriber_id = create_subscriber("logged@example.org", "Lou").id
        preferences, unsubscribe = tokens.preferences_token(subscriber_id), tokens.unsubscribe_token(subscriber_id)
    port, log = free_port(), tmp_path / "access.log"
    # The Procfile's web line, with the log in a file: gunicorn finds gunicorn.conf.py in its cwd.
    process = subprocess.Popen([str(BIN / "gunicorn"), "wsgi:app", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                                "--access-logfile", str(log)], cwd=ROOT, env=platform_env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: fetch(f"{base}/subscribe") == 200 if process.poll() is None else True, timeout=60,
                 message="gunicorn to answer")
        assert process.poll() is None, "gunicorn did not start"
        assert fetch(f"{base}/preferences/{preferences}", Referer=f"{base}/unsubscribe/{unsubscribe}") == 200
        assert fetch(f"{base}/unsubscribe/{unsubscribe}?utm=1") == 200
        escaped = unsubscribe.replace(".", "%2E")
        assert fetch(f"{base}/unsubscribe/{escaped}") == 200  # the router decodes it: still a working link
        assert fetch(f"{base}/manage/sent") == 200
        wait_for(lambda: log.exists() and log.read_text().count("\n") >= 5, timeout=30, message="the access lines")
    finally:
        stop(process)
    text = log.read_text()
    for secret in (preferences, unsubscribe, escaped, *preferences.split("."), *unsubscribe.split(".")):
        assert secret not in text
    assert '"GET /preferences/<redacted> HTTP/1.1" 200' in text
    assert '"GET /unsubscribe/<redacted>?utm=1 HTTP/1.1" 200' in text
    assert text.count("/unsubscribe/<redacted>") == 3  # the Referer too
    assert '"GET /manage/sent HTTP/1.1" 200' in text  # plain pages stay readable


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the 302 itself is the answer; its Location is not ours to fetch


def test_tracking_hits_leave_no_token_in_the_access_log(app, platform_env, tmp_path):
    """The pixel and the redirect are answered before Flask (the fast path) and logged by the
    cheaper combined-format line: the request line, the Referer and the user agent still redacted."""
    from newsletter.services.campaigns import campaigns
    from newsletter.services.engagement import links
    from newsletter.services.engagement import tokens as tracking_tokens

    with app.app_context():
        campaign_id = campaigns.create(name="Logged", subject="Hi", from_email="news@example.com",
                                       html="<p>Hi</p>").id
        link_id = links.register(campaign_id, ["https://shop.example.com/logged"])[0]
        pixel = tracking_tokens.make("open", campaign_id, None, None, 1_800_000_000)
        click = tracking_tokens.make("click", campaign_id, link_id, None, 1_800_000_000)
    port, log = free_port(), tmp_path / "access.log"
    process = subprocess.Popen([str(BIN / "gunicorn"), "wsgi:app", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                                "--access-logfile", str(log)], cwd=ROOT, env=platform_env, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    opener = urllib.request.build_opener(_NoRedirect)

    def hit(path: str, **headers: str) -> tuple[int, str | None]:
        try:
            with opener.open(urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers),
                             timeout=10) as response:
                return response.status, response.headers.get("Location")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Location")

    try:
        wait_for(lambda: fetch(f"http://127.0.0.1:{port}/healthz") == 200 if process.poll() is None else True,
                 timeout=60, message="gunicorn to answer")
        assert process.poll() is None, "gunicorn did not start"
        assert hit(f"/o/{pixel}", Referer=f"https://mail.example.com/c/{click}") == (200, None)
        assert hit(f"/c/{click}?x=1", **{"User-Agent": f"Mozilla/5.0 /o/{pixel}"}) == \
            (302, "https://shop.example.com/logged")
        assert hit(f"/c/{click[:-1]}")[0] == 404  # handed to Flask: logged the same way
        wait_for(lambda: log.exists() and log.read_text().count("\n") >= 4, timeout=30, message="the access lines")
    finally:
        stop(process)
    text = log.read_text()
    for secret in (pixel, click, click[:-1]):
        assert secret not in text
    assert '"GET /o/<redacted> HTTP/1.1" 200 43 "https://mail.example.com/c/<redacted>"' in text
    assert '"GET /c/<redacted>?x=1 HTTP/1.1" 302 0 "-" "Mozilla/5.0 /o/<redacted>"' in text
    assert '"GET /c/<redacted> HTTP/1.1" 404' in text


def test_make_run_starts_gunicorn_with_the_same_config(platform_env):
    web = commands({"INSTANCE_PATH": platform_env["INSTANCE_PATH"]}, 8000)["web"]
    assert web[web.index("--config") + 1] == os.fspath(ROOT / "gunicorn.conf.py")


def test_the_apps_own_log_lines_are_redacted_too(app, caplog):
    """Flask logs an unhandled error as "Exception on <path> [<method>]": the path's token goes."""
    token = "eyJzIjo0Mn0.Zx1AbC.secretsignature123"
    with caplog.at_level("ERROR"):
        app.logger.error("Exception on /unsubscribe/%s [POST]", token)
    assert "Exception on /unsubscribe/<redacted> [POST]" in caplog.text
    assert "secretsignature123" not in caplog.text


def test_tracking_tokens_are_redacted_and_other_paths_kept():
    """An individual-mode tracking token names a subscriber: the path shape stays, the token goes."""
    line = '127.0.0.1 "GET /c/AQIDBAUGBwgJCgsMDQ4P HTTP/1.1" 302 / "GET /o/AbCdEf123 HTTP/1.1" 200'
    assert redact(line) == '127.0.0.1 "GET /c/<redacted> HTTP/1.1" 302 / "GET /o/<redacted> HTTP/1.1" 200'
    for kept in ("GET /admin/campaigns/12 HTTP/1.1", "GET /static/app.js HTTP/1.1", "GET /api/v1/campaigns/3/stats"):
        assert redact(kept) == kept


def _loggers(tmp_path):
    """gunicorn's own logger, then ours, each writing the default access format to its own file
    (one after the other: they share the "gunicorn.access" logging logger)."""
    import importlib.util

    from gunicorn.config import Config
    from gunicorn.glogging import Logger

    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for cls, name in ((Logger, "plain.log"), (module.RedactingLogger, "ours.log")):
        cfg = Config()
        cfg.set("accesslog", str(tmp_path / name))
        yield cls(cfg), tmp_path / name


def test_the_cheaper_access_line_is_gunicorns_line_with_the_tokens_redacted(tmp_path):
    from datetime import timedelta
    from types import SimpleNamespace

    def environ(path: str) -> dict:
        return {"REMOTE_ADDR": "10.1.2.3", "REQUEST_METHOD": "GET", "RAW_URI": path, "PATH_INFO": path.split("?")[0],
                "QUERY_STRING": "", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_REFERER": f"https://mail.example{path}",
                "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64)"}

    response = SimpleNamespace(status="302 FOUND", sent=0, headers=[("Location", "https://shop.example.com/")])
    request = SimpleNamespace(headers=[("HOST", "news.example.com")])
    lines = []
    for logger, path in _loggers(tmp_path):
        for uri in ("/admin/campaigns/3?page=2", "/c/AQABaxW9kBAfVewnn99EjeubyQ?x=1"):
            logger.access(response, request, environ(uri), timedelta(milliseconds=3))
        for handler in logger.access_log.handlers:
            handler.flush()
        lines.append([line.split("] ", 1)[1] for line in path.read_text().splitlines()])  # past the timestamp
    plain, ours = lines
    assert ours[0] == plain[0]  # byte for byte after the time
    assert ours[1] == plain[1].replace("AQABaxW9kBAfVewnn99EjeubyQ", "<redacted>")
    assert "AQABaxW9kBAfVewnn99EjeubyQ" not in ours[1] and ours[1].count("/c/<redacted>?x=1") == 2

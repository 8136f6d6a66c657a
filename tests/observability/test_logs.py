"""LOG_FORMAT=json: web and worker write one JSON object a line, and the request id of an API
call is on the worker's lines for the task that call enqueued."""
from __future__ import annotations

import json
import re
import subprocess

import pytest

from tests.support.net import wait_for
from tests.support.processes import BIN, ROOT, ProcessLog, celery_worker, flask_cli, gunicorn, stop

from .conftest import call

# one_pass (tests/conftest.py): the log format of web and worker, on a Redis of this test's own.
pytestmark = pytest.mark.one_pass


def json_lines(text: str) -> list[dict]:
    """Every line of a process's output, each parsed as JSON (a line that is not fails the test)."""
    lines = []
    for line in text.splitlines():
        if line.strip():
            try:
                lines.append(json.loads(line))
            except ValueError:
                pytest.fail(f"not a JSON line: {line!r}")
    return lines


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_one_notification_is_followed_from_the_api_call_to_the_worker(own_platform, smtp_server):
    env, key = own_platform
    env = {**env, "LOG_FORMAT": "json"}
    address = "followed@example.org"
    with gunicorn(env) as (base, web_log), celery_worker(env, queues="transactional", concurrency=1) as (_, worker_log):
        auth = {"Authorization": f"Bearer {key}"}
        status, headers, body = call("POST", f"{base}/api/v1/notifications", headers=auth, body={
            "to": address, "subject": "Your code", "text": "Hello {{ name }}", "data": {"name": "Fay"}})
        assert status == 202, body
        request_id, notification_id = headers["X-Request-ID"], body["id"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)  # none was sent: a new one

        # A caller's sane X-Request-ID is kept; one that is not (an address in it) is replaced.
        assert call("GET", f"{base}/healthz", headers={"X-Request-ID": "lb-7f3a9c21-0001"})[1]["X-Request-ID"] \
            == "lb-7f3a9c21-0001"
        replaced = call("GET", f"{base}/healthz", headers={"X-Request-ID": "x@example.org injected"})[1]
        assert re.fullmatch(r"[0-9a-f]{32}", replaced["X-Request-ID"])

        wait_for(lambda: smtp_server.received.get(address), 60, 0.1, "the notification to be sent")
        task_lines = lambda: [line for line in json_lines(worker_log.text)  # noqa: E731
                              if line.get("notification_id") == notification_id]
        wait_for(lambda: any("succeeded" in line["message"] for line in task_lines()), 30, 0.1,
                 "the task's success line")
        # Read before the worker stops: its "Warm shutdown" notice is Celery's own plain print.
        worker_lines, web_lines, lines = json_lines(worker_log.text), json_lines(web_log.text), task_lines()

    assert lines and all(line["request_id"] == request_id for line in lines), lines
    assert all(line["task"] == "newsletter.tasks.notifications.send_notification" for line in lines)
    task_ids = {line["task_id"] for line in lines}
    assert len(task_ids) == 1
    # The worker's main process logs "received" outside the task: that line names the task by its id.
    assert [line["task"] for line in worker_lines if line.get("task_id") in task_ids
            and line["message"].endswith("] received")] == ["newsletter.tasks.notifications.send_notification"]
    for line in worker_lines + web_lines:
        assert {"timestamp", "level", "logger", "message"} <= set(line), line
        assert address not in json.dumps(line), line
    assert any(line["message"].endswith(" ready.") for line in worker_lines)  # Celery's own lines too

    access = [line for line in web_lines if line["logger"] == "gunicorn.access"]
    posted = [line for line in access if line["message"].startswith("POST /api/v1/notifications")]
    assert len(posted) == 1 and posted[0]["request_id"] == request_id and posted[0]["status"] == 202
    assert any(line["logger"] == "gunicorn.error" for line in web_lines)  # "Starting gunicorn", "Booting worker"


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_campaign_is_followed_from_the_send_call_to_every_batch(own_platform, smtp_server):
    """The request id and the campaign id are on the dispatcher's, every batch's and the chord
    callback's lines: tasks enqueued by tasks carry the request id on."""
    env, key = own_platform
    env = {**env, "LOG_FORMAT": "json"}
    auth = {"Authorization": f"Bearer {key}"}
    with gunicorn(env) as (base, _), celery_worker(env, queues="bulk,default", concurrency=2) as (_, worker_log):
        list_id = call("POST", f"{base}/api/v1/lists", body={"name": "Followed", "opt_in": "single"},
                       headers=auth)[2]["id"]
        for i in range(60):  # SEND_BATCH_SIZE is 25 in the tests: three batches
            assert call("POST", f"{base}/api/v1/subscribers", headers=auth, body={
                "email": f"reader{i:02d}@example.org", "list_ids": [list_id]})[0] == 201
        campaign_id = call("POST", f"{base}/api/v1/campaigns", headers=auth, body={
            "name": "Followed", "subject": "Hi", "from_email": "news@example.com", "html": "<p>Hi</p>",
            "list_ids": [list_id]})[2]["id"]
        status, headers, body = call("POST", f"{base}/api/v1/campaigns/{campaign_id}/send", headers=auth)
        assert status == 202, body
        request_id = headers["X-Request-ID"]

        def finished() -> bool:
            return call("GET", f"{base}/api/v1/campaigns/{campaign_id}", headers=auth)[2]["status"] == "sent"
        wait_for(finished, 120, 0.5, "the campaign to be sent")
        try:
            wait_for(lambda: any(line.get("task", "").endswith("window_done") and "succeeded" in line["message"]
                                 for line in json_lines(worker_log.text)), 30, 0.2, "the chord callback's success line")
        except TimeoutError:  # say what the worker did instead
            pytest.fail("no chord callback succeeded; the worker's INFO lines and above:\n" + "\n".join(
                f"{line['level']} {line.get('task', '')} {line['message'][:200]}"
                for line in json_lines(worker_log.text) if line["level"] != "DEBUG")[-5000:])
        lines = [line for line in json_lines(worker_log.text) if line.get("campaign_id") == campaign_id]

    assert lines and {line["request_id"] for line in lines} == {request_id}
    tasks = {line["task"].rsplit(".", 1)[1] for line in lines}
    assert {"dispatch_campaign", "send_batch", "window_done"} <= tasks, tasks
    batches = {line["task_id"] for line in lines if line["task"].endswith("send_batch")}
    delivered = sorted(i for line in lines if line["task"].endswith("send_batch") and "succeeded" in line["message"]
                       for i in line["delivery_ids"])
    # Three batches of 25, 25 and 10; a batch the rate limit or a worker handed back is published
    # again as another task, so there may be more, and an id may be on two of them.
    assert len(batches) >= 3 and len(set(delivered)) == 60


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_beat_as_the_procfile_runs_it_writes_json_lines(own_redis, tmp_path):
    procfile = (ROOT / "Procfile").read_text()
    argv = re.search(r"^beat: (.*)$", procfile, re.M).group(1).replace("/tmp/celerybeat-schedule",
                                                                       str(tmp_path / "schedule")).split()
    assert argv[0] == "celery"
    process = subprocess.Popen([str(BIN / "celery"), *argv[1:]], cwd=ROOT, env={**own_redis, "LOG_FORMAT": "json"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    log = ProcessLog(process)
    try:
        wait_for(lambda: "Sending due task" in log.text or process.poll() is not None, 60, 0.2, "beat to send a task")
        lines = json_lines(log.text)
    finally:
        stop(process)
    assert any(line["message"] == "beat: Starting..." and line["logger"] == "celery.beat" for line in lines)
    assert any(line["message"].startswith("Scheduler: Sending due task") for line in lines)


def test_the_release_step_writes_json_lines(platform_env, tmp_path):
    env = {**platform_env, "LOG_FORMAT": "json", "DATABASE_URL": f"sqlite:///{tmp_path / 'release.db'}"}
    result = flask_cli("db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stdout + result.stderr)
    assert any(line["logger"] == "alembic.runtime.migration" and line["message"].startswith("Running upgrade")
               for line in lines)


def test_text_stays_the_default_and_a_wrong_log_format_is_refused():
    from newsletter.config import ConfigError, build_config

    assert build_config({})["LOG_FORMAT"] == "text"
    assert build_config({"LOG_FORMAT": "JSON "})["LOG_FORMAT"] == "json"
    with pytest.raises(ConfigError, match="LOG_FORMAT must be text or json"):
        build_config({"LOG_FORMAT": "yaml"})

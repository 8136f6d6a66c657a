"""The request id travels with the tasks a request enqueues, and every task's log lines say
which task, which request and which campaign/notification/deliveries they are about.

- before_task_publish: the publishing context's request id goes into the message headers
  (a web request's, or the running task's, so a campaign's batches carry the request that
  started it);
- task_prerun / task_postrun: the task's id, name, that request id and the `*_id` / `*_ids`
  arguments it was called with are bound to the log context for the task's duration;
- after_setup_logger / after_setup_task_logger / celeryd_init: with LOG_FORMAT=json, Celery's
  own handlers get the JSON formatter and the worker prints no banner.
"""
from __future__ import annotations

import inspect
import logging
from contextvars import Token
from functools import lru_cache
from typing import Any

from celery import Task, signals

from . import context, logs

HEADER = "request_id"  # the Celery message header
MAX_IDS = 1000  # a send batch's delivery ids are logged whole; a longer list is left out

_tokens: dict[str, Token] = {}


def on_publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = context.request_id()
    if request_id and headers is not None:
        headers.setdefault(HEADER, request_id)


@lru_cache(maxsize=256)
def _parameters(task: Task) -> tuple[str, ...]:
    try:  # a bound task's `run` is a bound method: its signature leaves `self` out
        return tuple(inspect.signature(task.run).parameters)
    except (TypeError, ValueError):
        return ()


def ids_of(task: Task, args: Any, kwargs: Any) -> dict[str, Any]:
    """The `*_id` (int) and `*_ids` (list of ints) arguments of a call, by parameter name."""
    named = dict(zip(_parameters(task), args or (), strict=False)) | dict(kwargs or {})
    found: dict[str, Any] = {}
    for name, value in named.items():
        if name.endswith("_id") and isinstance(value, int) and not isinstance(value, bool):
            found[name] = value
        elif (name.endswith("_ids") and isinstance(value, list) and len(value) <= MAX_IDS
              and all(isinstance(item, int) for item in value)):
            found[name] = value
    return found


def on_prerun(task_id: str | None = None, task: Task | None = None, args: Any = None, kwargs: Any = None,
              **_: Any) -> None:
    if task is None or task_id is None:
        return
    request = task.request
    request_id = getattr(request, HEADER, None) or (getattr(request, "headers", None) or {}).get(HEADER)
    _tokens[task_id] = context.bind(task_id=task_id, task=task.name, request_id=request_id,
                                    **ids_of(task, args, kwargs))


def on_postrun(task_id: str | None = None, **_: Any) -> None:
    token = _tokens.pop(task_id or "", None)
    if token is not None:
        try:
            context.reset(token)
        except ValueError:  # set in another context (never in the prefork pool): drop it instead
            pass


def connect(log_format: str) -> None:
    """Connect the signals (once a process: `dispatch_uid`); the JSON ones only in JSON mode."""
    signals.before_task_publish.connect(on_publish, weak=False, dispatch_uid="newsletter.request_id.publish")
    signals.task_prerun.connect(on_prerun, weak=False, dispatch_uid="newsletter.request_id.prerun")
    signals.task_postrun.connect(on_postrun, weak=False, dispatch_uid="newsletter.request_id.postrun")
    if log_format != "json":
        return

    def json_handlers(logger: logging.Logger | None = None, **_: Any) -> None:
        if logger is not None:
            logs.use_json(logger)

    def quiet(instance: Any = None, **_: Any) -> None:
        if instance is not None:
            instance.quiet = True  # the banner is plain text; the "ready." line says the same in JSON

    signals.after_setup_logger.connect(json_handlers, weak=False, dispatch_uid="newsletter.json.logger")
    signals.after_setup_task_logger.connect(json_handlers, weak=False, dispatch_uid="newsletter.json.task_logger")
    signals.celeryd_init.connect(quiet, weak=False, dispatch_uid="newsletter.json.quiet")

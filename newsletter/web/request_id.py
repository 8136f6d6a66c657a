"""Every request gets an id: the caller's X-Request-ID when it is sane (nginx's $request_id,
a load balancer's), else a new one. It is bound to the log context for the request (so its log
lines and the tasks it enqueues carry it: observability/celery_context.py) and returned in the
response's X-Request-ID header. The tracking fast path (public/tracking.py) has none: it logs
nothing and enqueues nothing."""
from __future__ import annotations

from flask import Flask, Response, g, request

from ..observability import context


def start() -> None:
    g.request_id = context.request_id_from(request.headers.get(context.HEADER))
    g.log_context = context.bind(request_id=g.request_id)


def answer(response: Response) -> Response:
    if "request_id" in g:
        response.headers[context.HEADER] = g.request_id
    return response


def finish(_: BaseException | None = None) -> None:
    # gunicorn's threads serve one request after another: nothing may carry over to the next.
    token = g.pop("log_context", None)
    if token is not None:
        context.reset(token)


def register(app: Flask) -> None:
    # First of all hooks: a request refused by an earlier hook (body limits, CSRF) still has its id.
    app.before_request_funcs.setdefault(None, []).insert(0, start)
    app.after_request(answer)
    app.teardown_request(finish)

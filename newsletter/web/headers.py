"""Security headers on every response: CSP, framing, sniffing, referrer, HSTS and caching.

The policy allows scripts only from our own static files or inline blocks carrying this
request's nonce, so an injected `<script>` or event handler never runs. Inline styles stay
allowed: email HTML (previews in sandboxed `srcdoc` frames inherit this policy, and the web
view) is styled inline by design, and a style cannot run code.

The tracking pixel and redirect (web/public/tracking.py) are answered before Flask's hooks run;
they carry `tracking_headers`, fixed ones: a GIF or an empty 302 runs no script, so their policy
allows nothing at all and needs no nonce.
"""
from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, request

_POLICY = ("default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
           "img-src 'self' data: https: http:; font-src 'self' data:; connect-src 'self'; frame-src 'self'; "
           "frame-ancestors 'none'; base-uri 'none'; form-action 'self'{form_origin}; object-src 'none'")
HSTS = "max-age=31536000; includeSubDomains"
# The tracking answers' headers. Never stored (each fetch is a count; an individually tracked
# one is personal), no Referer passed on to the link's site (the token would be in it).
_TRACKING = (("Cache-Control", "no-store, private"), ("Pragma", "no-cache"), ("Referrer-Policy", "no-referrer"),
             ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"),
             ("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "nosniff"),
             ("Cross-Origin-Opener-Policy", "same-origin"))


def csp_nonce() -> str:
    """This request's script nonce (templates: `<script nonce="{{ csp_nonce() }}">`)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _policy_template(base_url: str) -> str:
    """The policy with only the nonce left to fill in (BASE_URL is fixed for the app's life)."""
    base = urlsplit(base_url)
    # Forms on our pages may point at BASE_URL when the admin is opened under another name.
    form_origin = f" {base.scheme}://{base.netloc}" if base.netloc else ""
    return _POLICY.replace("{form_origin}", form_origin)


def _set_headers(response: Response) -> Response:
    headers = response.headers
    policy = current_app.extensions["csp_policy"]
    headers.setdefault("Content-Security-Policy", policy.replace("{nonce}", csp_nonce()))
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if request.is_secure:  # behind a TLS proxy, ProxyFix makes this true from X-Forwarded-Proto
        headers.setdefault("Strict-Transport-Security", HSTS)
    if _private(request.path) and "Cache-Control" not in headers:
        # Admin pages and API answers carry personal data and CSRF tokens: never stored by a
        # browser or a shared cache, so Back after sign-out shows nothing.
        headers["Cache-Control"] = "no-store"
    return response


def tracking_headers(secure: bool) -> list[tuple[str, str]]:
    """The security and caching headers of a tracking answer (`secure`: the request came over HTTPS)."""
    headers = list(_TRACKING)
    if secure:
        headers.append(("Strict-Transport-Security", HSTS))
    return headers


def _private(path: str) -> bool:
    return not path.startswith(("/static/", "/healthz", "/readyz"))


def register(app: Flask) -> None:
    app.extensions["csp_policy"] = _policy_template(app.config["BASE_URL"])
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.after_request(_set_headers)

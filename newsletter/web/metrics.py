"""GET /metrics: Prometheus' text format, for this host's web and worker processes and the
scrape-time gauges (docs/operations.md).

Open to METRICS_ALLOWED_NETWORKS (loopback by default), or to `Authorization: Bearer
<METRICS_TOKEN>`; anyone else gets 403. Behind the reverse proxy the client's address is the one
ProxyFix takes from X-Forwarded-For (TRUSTED_PROXIES), never the proxy's own.
"""
from __future__ import annotations

import hmac
import ipaddress

from flask import Blueprint, Response, current_app, request

from ..extensions import csrf, limiter
from ..metrics import exposition
from ..services import monitoring

bp = Blueprint("metrics", __name__)
csrf.exempt(bp)
limiter.exempt(bp)


def allowed() -> bool:
    config = current_app.config
    token = config["METRICS_TOKEN"]
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in ipaddress.ip_network(network) for network in config["METRICS_ALLOWED_NETWORKS"])


@bp.get("/metrics")
def metrics() -> Response:
    if not allowed():
        return Response("Forbidden: /metrics is open to METRICS_ALLOWED_NETWORKS or a METRICS_TOKEN bearer.\n",
                        403, mimetype="text/plain")
    body, content_type = exposition.render(monitoring.readings)
    return Response(body, 200, content_type=content_type, headers={"Cache-Control": "no-store"})

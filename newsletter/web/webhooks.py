"""Admin pages for outgoing webhooks (being built)."""
from __future__ import annotations

from flask import Blueprint, render_template

from ..models import Role
from .roles import role_required

bp = Blueprint("webhooks", __name__, url_prefix="/admin/webhooks")


@bp.get("/")
@role_required(Role.ADMIN)
def index():
    return render_template("admin/webhooks/index.html")

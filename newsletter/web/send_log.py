"""Admin pages: Send log (being built)."""
from __future__ import annotations

from flask import Blueprint, render_template

from ..models import Role
from .roles import role_required

bp = Blueprint("send_log", __name__, url_prefix="/admin/send-log")


@bp.get("/")
@role_required(Role.VIEWER)
def index():
    return render_template("admin/send_log/index.html")

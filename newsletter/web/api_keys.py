"""Admin pages for API keys (being built)."""
from __future__ import annotations

from flask import Blueprint, render_template

from ..models import Role
from .roles import role_required

bp = Blueprint("api_keys", __name__, url_prefix="/admin/api-keys")


@bp.get("/")
@role_required(Role.ADMIN)
def index():
    return render_template("admin/api_keys/index.html")

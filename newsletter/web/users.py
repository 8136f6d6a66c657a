"""Admin pages: Users (being built)."""
from __future__ import annotations

from flask import Blueprint, render_template

from ..models import Role
from .roles import role_required

bp = Blueprint("users", __name__, url_prefix="/admin/users")


@bp.get("/")
@role_required(Role.ADMIN)
def index():
    return render_template("admin/users/index.html")

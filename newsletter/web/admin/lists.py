"""Admin pages for mailing lists: overview with counts, create, edit, delete, embed snippet."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from ...models import MailingList, OptIn, Role
from ...services.audience import lists
from ..forms import ConfirmForm
from ..lookups import found
from ..roles import role_required
from .forms import saved_or_form_error
from .forms.audience import ListForm

bp = Blueprint("lists", __name__, url_prefix="/admin/lists")


@bp.context_processor
def can_edit_context() -> dict[str, bool]:
    """Templates hide the change buttons from viewers (the server refuses them anyway)."""
    return {"can_edit": current_user.is_authenticated and current_user.role.allows(Role.MARKETER)}


def _save(form: ListForm, list_id: int | None = None) -> MailingList | None:
    values = dict(name=form.name.data, description=form.description.data, opt_in=form.opt_in.data,
                  public=form.public.data)
    return saved_or_form_error(form, lambda: lists.update(list_id, **values) if list_id else lists.create(**values))


@bp.get("/")
@role_required(Role.VIEWER)
def index():
    return render_template("admin/lists/index.html", lists=lists.all_lists(), counts=lists.counts_by_status())


@bp.route("/new", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def new():
    form = ListForm()
    if form.validate_on_submit() and (saved := _save(form)):
        flash(_("List “%(name)s” created.", name=saved.name), "success")
        return redirect(url_for(".detail", list_id=saved.id))
    return render_template("admin/lists/form.html", form=form, mailing_list=None)


@bp.get("/<list_id>")
@role_required(Role.VIEWER)
def detail(list_id: str):
    mailing_list = found(lists.get, list_id, "list")
    counts = lists.counts_by_status([mailing_list.id])[mailing_list.id]
    # Rendered to a plain string first, so the page shows it escaped as code to copy.
    snippet = render_template("admin/lists/_embed_form.html", mailing_list=mailing_list,
                              base_url=current_app.config["BASE_URL"]) if mailing_list.public else ""
    return render_template("admin/lists/detail.html", mailing_list=mailing_list, counts=counts, snippet=snippet)


@bp.route("/<list_id>/edit", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def edit(list_id: str):
    mailing_list = found(lists.get, list_id, "list")
    form = ListForm(obj=mailing_list)
    if not form.is_submitted():
        form.opt_in.data = OptIn(mailing_list.opt_in).value
    if form.validate_on_submit() and (saved := _save(form, mailing_list.id)):
        flash(_("List “%(name)s” saved.", name=saved.name), "success")
        return redirect(url_for(".detail", list_id=saved.id))
    return render_template("admin/lists/form.html", form=form, mailing_list=mailing_list)


@bp.route("/<list_id>/delete", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def delete(list_id: str):
    """GET asks for confirmation, naming the list and its members; POST deletes."""
    mailing_list = found(lists.get, list_id, "list")
    form = ConfirmForm()
    if form.validate_on_submit():
        name = mailing_list.name
        lists.delete(mailing_list.id)
        flash(_("List “%(name)s” deleted. Its subscribers are still in the audience.", name=name), "success")
        return redirect(url_for(".index"))
    members = sum(lists.counts_by_status([mailing_list.id])[mailing_list.id].values())
    return render_template("admin/lists/delete.html", mailing_list=mailing_list, members=members, form=form)

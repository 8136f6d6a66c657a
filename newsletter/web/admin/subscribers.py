"""Admin pages for subscribers: search, bulk actions, CSV export, detail, GDPR, suppressions."""
from __future__ import annotations

from datetime import date
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from ...models import Role, Subscriber
from ...services.audience import exports, gdpr, lists, subscribers, suppressions, tokens
from ...services.deliverability import bounces
from ...services.delivery import ledger as deliveries
from ...services.errors import Conflict, NotFound, ValidationError
from ..forms import ConfirmForm
from ..i18n import localized
from ..lookups import found, parse_id
from ..roles import role_required
from .forms import apply_error, saved_or_form_error
from .forms.attributes import KINDS as ATTRIBUTE_KINDS
from .forms.audience import BulkForm, LiftForm, NewSubscriberForm, SearchForm, SubscriberForm, SuppressionForm
from .lists import can_edit_context

bp = Blueprint("subscribers", __name__, url_prefix="/admin/subscribers")
bp.context_processor(can_edit_context)

BULK_ACTIONS = {"add", "remove", "unsubscribe", "delete"}
CONFIRM_FIRST = {"unsubscribe", "delete"}
SUPPRESSIONS_PAGE = 100


def _filters(args: MultiDict) -> subscribers.Filters:
    key, value = (args.get("attr_key") or "").strip(), args.get("attr_value") or ""
    return subscribers.make_filters(q=args.get("q"), status=args.get("status"), list_id=args.get("list_id"),
                                    attribute=(key, value) if key or value else None)


def _list_choices(first: str) -> list[tuple[str, str]]:
    return [("", first)] + [(str(item.id), item.name) for item in lists.all_lists()]


@bp.get("/")
@role_required(Role.VIEWER)
def index():
    form = SearchForm(formdata=request.args)
    form.list_id.choices = _list_choices(_("Any list"))
    items: list[Any] = []
    next_cursor, total, filters = None, None, None
    try:
        filters = _filters(request.args)
        items, next_cursor = subscribers.search(filters=filters, cursor=request.args.get("cursor"))
        total = subscribers.count(filters)
    except ValidationError as exc:
        if not apply_error(form, exc):
            flash(localized(exc), "error")
    bulk = BulkForm()
    bulk.target_list.choices = _list_choices("List…")
    return render_template("admin/subscribers/index.html", form=form, bulk=bulk, items=items, total=total,
                           args=filters.as_args() if filters else {}, next_cursor=next_cursor,
                           paged=bool(request.args.get("cursor")))


def _run_bulk(action: str, target: dict[str, Any], list_id: str | None) -> str:
    if action in ("add", "remove"):
        ident = parse_id(list_id or "")
        if ident is None:
            raise ValidationError("target_list", _("Choose the list."))
        name = lists.get(ident).name
        if action == "add":
            count = subscribers.bulk_add_to_list(ident, **target)
            return ngettext("Added %(count)s subscriber to “%(name)s”.",
                            "Added %(count)s subscribers to “%(name)s”.", count,
                            count=f"{count:,}", name=name)
        count = subscribers.bulk_remove_from_list(ident, **target)
        return ngettext("Removed %(count)s subscriber from “%(name)s”.",
                        "Removed %(count)s subscribers from “%(name)s”.", count,
                        count=f"{count:,}", name=name)
    if action == "unsubscribe":
        count = subscribers.bulk_unsubscribe(**target)
        return ngettext("Unsubscribed %(count)s subscriber from every list.",
                        "Unsubscribed %(count)s subscribers from every list.",
                        count, count=f"{count:,}")
    count = subscribers.bulk_delete(**target)
    return ngettext("Deleted %(count)s subscriber.", "Deleted %(count)s subscribers.", count, count=f"{count:,}")


@bp.post("/bulk")
@role_required(Role.MARKETER)
def bulk():
    """Apply an action to the ticked rows or to every match; destructive ones confirm first."""
    form = BulkForm()
    back_to = request.form.get("back_to")
    ids = request.form.getlist("ids")
    try:
        filters = _filters(request.form)
    except ValidationError as exc:
        flash(localized(exc), "error")
        return redirect(url_for(".index"))
    back = url_for(".detail", subscriber_id=ids[0]) if back_to == "detail" and len(ids) == 1 else \
        url_for(".index", **filters.as_args())
    action = form.action.data
    if not form.validate_on_submit() or action not in BULK_ACTIONS:
        flash(_("Choose an action for the selected subscribers."), "error")
        return redirect(back)
    target = {"filters": filters} if form.all_matching.data else {"ids": ids}
    if not form.all_matching.data and not ids:
        flash(_("Tick at least one subscriber, or “all subscribers matching this search”."), "error")
        return redirect(back)
    if action in CONFIRM_FIRST and form.confirmed.data != "yes":
        how_many = subscribers.count(filters) if form.all_matching.data else len(set(ids))
        return render_template("admin/subscribers/confirm_bulk.html", form=form, action=action, ids=ids,
                               args=filters.as_args(), how_many=how_many, back=back, back_to=back_to)
    try:
        flash(_run_bulk(action, target, form.target_list.data), "success")
    except (ValidationError, NotFound) as exc:
        flash(getattr(exc, "message", _("That list no longer exists.")), "error")
    if action == "delete" and back_to == "detail":
        back = url_for(".index")
    return redirect(back)


@bp.get("/export.csv")
@role_required(Role.MARKETER)
def export_csv():
    """The current search (or one list) as CSV, streamed while it is read in batches."""
    try:
        filters = _filters(request.args)
    except ValidationError as exc:
        flash(localized(exc), "error")
        return redirect(url_for(".index"))
    name = f"subscribers-{date.today().isoformat()}.csv"
    if filters.list_id is not None and filters == subscribers.Filters(list_id=filters.list_id):
        name = f"list-{filters.list_id}-{date.today().isoformat()}.csv"
    response = Response(stream_with_context(exports.subscribers_csv(filters)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _save_new(form: NewSubscriberForm) -> Subscriber | None:
    return saved_or_form_error(form, lambda: subscribers.create(
        form.email.data, name=form.name.data, attributes=form.attributes.data, list_ids=form.lists.data or [],
        status=form.status.data, language=form.language.data), {"list_ids": "lists"})


@bp.route("/new", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def new():
    form = NewSubscriberForm()
    form.lists.choices = [(item.id, item.name) for item in lists.all_lists()]
    from_list = parse_id(request.args.get("list_id") or "")
    if not form.is_submitted() and from_list in dict(form.lists.choices):
        form.lists.data = [from_list]  # "Add subscriber" on a list's page: that list, ticked
    if not request.form.get("add_row") and form.validate_on_submit() and (created := _save_new(form)):
        flash(_("%(email)s added.", email=created.email), "success")
        return redirect(url_for(".detail", subscriber_id=created.id))
    return _form_page(form, None)


@bp.get("/<subscriber_id>")
@role_required(Role.VIEWER)
def detail(subscriber_id: str):
    subscriber = found(subscribers.get, subscriber_id, "subscriber")
    bulk = BulkForm()
    bulk.target_list.choices = _list_choices("List…")
    return render_template("admin/subscribers/detail.html", subscriber=subscriber, bulk=bulk,
                           list_names=dict(bulk.target_list.choices[1:]),
                           memberships=subscribers.memberships(subscriber.id),
                           consents=subscribers.consents(subscriber.id),
                           deliveries=deliveries.for_subscriber(subscriber.id),
                           suppressed=suppressions.is_suppressed(subscriber.email),
                           returned=bounces.for_subscriber(subscriber.id))


@bp.route("/<subscriber_id>/edit", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def edit(subscriber_id: str):
    subscriber = found(subscribers.get, subscriber_id, "subscriber")
    form = SubscriberForm(obj=subscriber)
    if not form.is_submitted():
        form.status.data = subscriber.status.value
    if request.form.get("add_row"):  # the no-JavaScript "Add a row": show the form again, save nothing
        return _form_page(form, subscriber)
    if form.validate_on_submit():
        try:
            subscribers.update(subscriber.id, email=form.email.data, name=form.name.data,
                               attributes=form.attributes.data, status=form.status.data,
                               language=form.language.data)
        except (ValidationError, Conflict) as exc:
            if not apply_error(form, exc):
                flash(localized(exc), "error")
        else:
            flash(_("Subscriber saved."), "success")
            return redirect(url_for(".detail", subscriber_id=subscriber.id))
    return _form_page(form, subscriber)


def _form_page(form: SubscriberForm, subscriber: Subscriber | None) -> str:
    extra = 1 + bool(request.form.get("add_row"))  # always one empty row to fill in; two after "Add a row"
    return render_template("admin/subscribers/form.html", form=form, subscriber=subscriber, empty_rows=extra,
                           kinds=ATTRIBUTE_KINDS)


def _confirm_page(subscriber: Subscriber, what: str) -> str:
    return render_template("admin/subscribers/confirm.html", subscriber=subscriber, what=what, form=ConfirmForm())


@bp.route("/<subscriber_id>/delete", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def delete(subscriber_id: str):
    subscriber = found(subscribers.get, subscriber_id, "subscriber")
    if not ConfirmForm().validate_on_submit():
        return _confirm_page(subscriber, "delete")
    email = subscriber.email
    subscribers.delete(subscriber.id)
    flash(_("%(email)s deleted.", email=email), "success")
    return redirect(url_for(".index"))


@bp.route("/<subscriber_id>/erase", methods=["GET", "POST"])
@role_required(Role.MARKETER)
def erase(subscriber_id: str):
    """GDPR erasure: anonymise the row and suppress the address (see services.gdpr)."""
    subscriber = found(subscribers.get, subscriber_id, "subscriber")
    if not ConfirmForm().validate_on_submit():
        return _confirm_page(subscriber, "erase")
    gdpr.erase_subscriber(subscriber.id)
    flash(_("Personal data erased. The address is suppressed so no import or form adds it again."), "success")
    return redirect(url_for(".detail", subscriber_id=subscriber.id))


@bp.post("/<subscriber_id>/revoke-links")
@role_required(Role.MARKETER)
def revoke_links(subscriber_id: str):
    """End every unsubscribe/preferences/web-view link mailed to this person so far."""
    subscriber = found(subscribers.get, subscriber_id, "subscriber")
    if not ConfirmForm().validate_on_submit():
        abort(400, description=_l("The form expired; reload the page and try again."))
    tokens.revoke_links(subscriber.id)
    flash(_("Every link mailed to this subscriber so far no longer works. The next email carries new ones."), "success")
    return redirect(url_for(".detail", subscriber_id=subscriber.id))


@bp.get("/<subscriber_id>/export.json")
@role_required(Role.MARKETER)
def export_json(subscriber_id: str):
    """GDPR access request: everything stored about this person, as a JSON download."""
    subscriber = found(subscribers.get, subscriber_id, "subscriber")
    response = jsonify(gdpr.export_subscriber(subscriber.id))
    response.headers["Content-Disposition"] = f'attachment; filename="subscriber-{subscriber.id}.json"'
    return response


def _suppressions_page(form: SuppressionForm) -> str:
    after = request.args.get("after") or None
    rows = suppressions.list_suppressions(limit=SUPPRESSIONS_PAGE + 1, after=after)
    next_after = rows[SUPPRESSIONS_PAGE - 1].email if len(rows) > SUPPRESSIONS_PAGE else None
    return render_template("admin/subscribers/suppressions.html", form=form, rows=rows[:SUPPRESSIONS_PAGE],
                           next_after=next_after, paged=bool(after), lift_form=LiftForm(),
                           can_lift=current_user.role.allows(Role.ADMIN))


@bp.get("/suppressions")
@role_required(Role.VIEWER)
def suppression_list():
    return _suppressions_page(SuppressionForm())


@bp.post("/suppressions")
@role_required(Role.MARKETER)
def suppression_add():
    form = SuppressionForm()
    if form.validate_on_submit():
        try:
            added = subscribers.suppress_address(form.email.data, form.note.data or "")
        except ValidationError as exc:
            apply_error(form, exc)
        else:
            flash(_("%(added)s is suppressed: it gets no more marketing email.", added=added), "success")
            return redirect(url_for(".suppression_list"))
    return _suppressions_page(form)


@bp.post("/suppressions/lift")
@role_required(Role.ADMIN)  # mailing a suppressed address again is an admin's call (and audited)
def suppression_lift():
    form = LiftForm()
    if form.validate_on_submit() and suppressions.lift(form.email.data):
        flash(_("Suppression of %(email)s lifted. Imports and signup forms may subscribe it again.",
                email=form.email.data),
              "success")
    else:
        flash(_("That address was not suppressed."), "error")
    return redirect(url_for(".suppression_list"))


"""Admin pages for outgoing webhooks: endpoints, their secret, the delivery log, replay, test."""
from __future__ import annotations

import json

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ...models import Role, Webhook
from ...services.webhooks import webhook_deliveries, webhooks
from ..forms import ConfirmForm
from ..lookups import found, parse_id
from ..roles import role_required
from .forms import saved_or_form_error
from .forms.webhooks import EVENT_HINTS, WebhookForm

bp = Blueprint("webhooks", __name__, url_prefix="/admin/webhooks")


def _save(form: WebhookForm, webhook_id: int | None = None) -> Webhook | None:
    values = dict(url=form.url.data, description=form.description.data, events=form.events.data or [],
                  active=form.active.data)
    return saved_or_form_error(form, lambda: webhooks.update_webhook(webhook_id, **values) if webhook_id
                               else webhooks.create(**values))


@bp.get("/")
@role_required(Role.ADMIN)
def index():
    endpoints = webhooks.all_webhooks()
    rates = webhook_deliveries.success_rates([w.id for w in endpoints])
    return render_template("admin/webhooks/index.html", webhooks=endpoints, rates=rates)


@bp.route("/new", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def new():
    form = WebhookForm()
    if form.validate_on_submit() and (saved := _save(form)):
        flash(_("Webhook created. Copy its signing secret to your receiver."), "success")
        return redirect(url_for(".detail", webhook_id=saved.id))
    return render_template("admin/webhooks/form.html", form=form, webhook=None, hints=EVENT_HINTS)


@bp.get("/<webhook_id>")
@role_required(Role.ADMIN)
def detail(webhook_id: str):
    webhook = found(webhooks.get, webhook_id, "webhook")
    before = parse_id(request.args.get("before", ""))
    log, cursor = webhook_deliveries.log(webhook.id, before=before)
    rate = webhook_deliveries.success_rates([webhook.id])[webhook.id]
    return render_template("admin/webhooks/detail.html", webhook=webhook, secret=webhooks.secret_for(webhook),
                           log=log, cursor=cursor, paged=before is not None, rate=rate, form=ConfirmForm())


@bp.route("/<webhook_id>/edit", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def edit(webhook_id: str):
    webhook = found(webhooks.get, webhook_id, "webhook")
    form = WebhookForm(obj=webhook)
    if form.validate_on_submit() and (saved := _save(form, webhook.id)):
        flash(_("Webhook saved."), "success")
        return redirect(url_for(".detail", webhook_id=saved.id))
    return render_template("admin/webhooks/form.html", form=form, webhook=webhook, hints=EVENT_HINTS)


def _confirmed(webhook_id: str, action: str, change, message: str, done_url: str | None = None):
    """GET asks for confirmation, naming the endpoint; a POST with the CSRF token does `change`."""
    webhook = found(webhooks.get, webhook_id, "webhook")
    form = ConfirmForm()
    if form.validate_on_submit():
        change(webhook.id)
        flash(message.format(url=webhook.url), "success")
        return redirect(done_url or url_for(".detail", webhook_id=webhook.id))
    return render_template("admin/webhooks/confirm.html", webhook=webhook, form=form, action=action)


@bp.route("/<webhook_id>/delete", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def delete(webhook_id: str):
    return _confirmed(webhook_id, "delete", webhooks.delete, _("Webhook to {url} deleted, with its delivery log."),
                      url_for(".index"))


@bp.route("/<webhook_id>/rotate", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def rotate(webhook_id: str):
    """Receivers must switch to the new secret, hence the confirmation."""
    return _confirmed(webhook_id, "rotate", webhooks.rotate_secret,
                      _("New signing secret made. Update your receiver: deliveries from now on use it."))


@bp.post("/<webhook_id>/test")
@role_required(Role.ADMIN)
def test(webhook_id: str):
    webhook = found(webhooks.get, webhook_id, "webhook")
    if ConfirmForm().validate_on_submit():
        webhook_deliveries.send_test(webhook.id)
        flash(_("Test event queued; it appears in the log below within seconds.") if webhook.active else
              _("Test event queued; it appears in the log below within seconds. It waits until you make the "
                "webhook active."), "success")
    return redirect(url_for(".detail", webhook_id=webhook.id))


@bp.get("/<webhook_id>/deliveries/<delivery_id>")
@role_required(Role.ADMIN)
def delivery(webhook_id: str, delivery_id: str):
    webhook = found(webhooks.get, webhook_id, "webhook")
    row = found(lambda ident: webhook_deliveries.get(webhook.id, ident), delivery_id, "delivery")
    try:
        pretty = json.dumps(json.loads(row.payload), indent=2, ensure_ascii=False)
    except ValueError:
        pretty = row.payload
    return render_template("admin/webhooks/delivery.html", webhook=webhook, delivery=row, payload=pretty,
                           form=ConfirmForm())


@bp.post("/<webhook_id>/deliveries/<delivery_id>/replay")
@role_required(Role.ADMIN)
def replay(webhook_id: str, delivery_id: str):
    webhook = found(webhooks.get, webhook_id, "webhook")
    row = found(lambda ident: webhook_deliveries.get(webhook.id, ident), delivery_id, "delivery")
    if ConfirmForm().validate_on_submit():
        copy = webhook_deliveries.replay(webhook.id, row.id)
        flash(_("Replayed as delivery %(id)s, with the same payload.", id=copy.id), "success")
        return redirect(url_for(".delivery", webhook_id=webhook.id, delivery_id=copy.id))
    return redirect(url_for(".delivery", webhook_id=webhook.id, delivery_id=row.id))

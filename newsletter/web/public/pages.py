"""Pages for subscribers: subscribe, confirm, unsubscribe, preference center, manage link."""
from __future__ import annotations

import json
from typing import TypedDict

from flask import Blueprint, Response, abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from ...extensions import csrf, db, limiter
from ...models import ConsentSource, MailingList, OptIn, Subscriber, SubscriptionStatus
from ...services import addresses, languages
from ...services.audience import gdpr, subscriptions, suppressions, tokens
from ...services.audience import lists as lists_service
from ...services.audience.subscriptions import SubscribeResult
from ...services.campaigns import campaigns
from ...services.campaigns import translations as campaign_translations
from ...services.campaigns import web_view as web_view_document
from ...services.errors import ValidationError
from ...services.notifications import audience_mail
from ...tasks import enqueue
from ...tasks.notifications import send_notification
from ..forms import ConfirmForm
from ..i18n import browser_language, localized, use_language
from ..lookups import subscriber_id_by_email, subscriber_language
from .forms import EraseForm, ManageForm, PreferencesForm, SubscribeForm

bp = Blueprint("public", __name__)
ERASED_DOMAIN = "@erased.invalid"  # what gdpr.erase_subscriber leaves in place of the address


class _Client(TypedDict):
    ip: str | None
    user_agent: str | None


def _client() -> _Client:
    return {"ip": request.remote_addr, "user_agent": request.user_agent.string or None}


def _address_key() -> str:
    # A second limit keyed by the address typed in: an attacker rotating IPs must not be
    # able to flood one victim's inbox with confirmation or manage-link emails.
    # Keyed on the inbox, not the text typed: `bomb@ｅxample.com` is the same victim.
    return "address:" + addresses.mailbox_key(request.form.get("email") or "")


def _payload(purpose: str, token: str, max_age: int | None = None, retry_url: str | None = None) -> dict:
    """The token's payload, or a page saying why the link does nothing (expired, not ours, replaced, a preview)."""
    try:
        payload = tokens.load_current(purpose, token, max_age=max_age)
    except tokens.TokenError as exc:
        if exc.reason in ("preview", "revoked", "erased"):  # nothing is changed either way
            page = render_template("public/link_refused.html", reason=exc.reason, purpose=purpose)
            abort(make_response(page, 200 if exc.reason == "preview" else 410))
        page = render_template("public/link_error.html", expired=exc.expired, purpose=purpose, max_age=max_age,
                               retry_url=retry_url)
        abort(make_response(page, 400))
    if payload.get("s"):  # the page speaks the subscriber's language, when known
        use_language(subscriber_language(payload["s"]))
    return payload


def _ask_to_confirm(result: SubscribeResult) -> bool:
    """Queue the confirmation email for the lists awaiting it (committed, so the admin's mail
    log has it), then enqueue its send; False if there was nothing to ask."""
    if result.subscriber_id is None or not result.pending_list_ids:
        return False
    notification_id = audience_mail.queue_confirmation(result.subscriber_id, result.pending_list_ids)
    if notification_id is not None:
        enqueue(send_notification, notification_id)
    return True


def _names(list_ids: list[int]) -> list[str]:
    return list(db.session.scalars(select(MailingList.name).where(MailingList.id.in_(list_ids))
                                   .order_by(MailingList.name)))


@bp.after_request
def _private(response: Response) -> Response:
    # Tokens sit in these URLs and the pages show personal data: keep both out of Referer
    # headers and shared caches.
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "private, no-store")
    return response


@bp.errorhandler(429)
def _too_many(error):
    return render_template("public/message.html", title=_("Too many attempts"),
                           text=_("Please wait a minute, then try again.")), 429


@bp.get("/subscribe")
def lists_index():
    return render_template("public/lists.html", lists=lists_service.public_lists())


def _public_list(list_id: int) -> MailingList:
    mailing_list = db.session.get(MailingList, list_id)
    if mailing_list is None or not mailing_list.public:
        abort(404, description=_("There is no such list to subscribe to."))
    return mailing_list


@bp.route("/subscribe/<int:list_id>", methods=["GET", "POST"])
@csrf.exempt  # embeddable on other sites; signups are throttled and confirmed by email instead
@limiter.limit("5 per minute; 50 per hour", methods=["POST"])
@limiter.limit("5 per hour", key_func=_address_key, methods=["POST"])
def subscribe(list_id: int):
    mailing_list = _public_list(list_id)
    form = SubscribeForm()
    form.language.choices = [SelectChoice("", _("Same as my browser")),
                             *(SelectChoice(tag, name) for tag, name in languages.choices())]
    if form.validate_on_submit():
        if form.website.data:  # a bot: answer as if it worked, change nothing
            return redirect(url_for("public.subscribed", list_id=list_id))
        try:
            result = subscriptions.subscribe(form.email.data, [list_id], source=ConsentSource.FORM,
                                             name=form.name.data or "", **_client(),
                                             language=form.language.data or _signup_language())
        except ValidationError as exc:
            (form.name if exc.field == "name" else form.email).errors.append(localized(exc))
        else:
            # A suppressed address has nothing pending: same answer, no email, nothing revealed.
            _ask_to_confirm(result)
            return redirect(url_for("public.subscribed", list_id=list_id))
    status = 400 if form.errors else 200
    return render_template("public/subscribe.html", form=form, mailing_list=mailing_list), status


def _signup_language() -> str | None:
    """No language chosen on the form: the browser's first Accept-Language tag that is well formed
    (any language, so a campaign's translation into it can reach the person; pages fall back)."""
    for tag, _quality in request.accept_languages:
        try:
            language = languages.normalize(tag)
        except ValidationError:
            continue
        if language:
            return language
    return None


@bp.get("/subscribe/<int:list_id>/thanks")
def subscribed(list_id: int):
    # Depends on the list only, never on the address: the page must not tell who is known.
    mailing_list = _public_list(list_id)
    return render_template("public/subscribed.html", mailing_list=mailing_list,
                           double=mailing_list.opt_in == OptIn.DOUBLE)


@bp.get("/confirm/<token>")
def confirm(token: str):
    payload = _payload("confirm", token, tokens.CONFIRM_MAX_AGE, url_for("public.lists_index"))
    confirmed = subscriptions.confirm(payload["s"], payload.get("l") or [], **_client())
    if not confirmed:
        return render_template("public/message.html", title=_("Nothing to confirm"),
                               text=_("This link no longer applies: the subscription was ended since."),
                               action=(_("Subscribe again"), url_for("public.lists_index"))), 400
    return render_template("public/confirmed.html", names=_names(confirmed),
                           preferences_url=url_for("public.preferences", token=tokens.preferences_token(payload["s"])))


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # the signed token is the authorisation; RFC 8058 one-click POSTs carry no cookie
def unsubscribe(token: str):
    payload = _payload("unsubscribe", token)
    subscriber_id, list_ids = payload["s"], payload.get("l") or []
    if request.method == "POST" and request.form.get("List-Unsubscribe") == "One-Click":
        subscriptions.unsubscribe(subscriber_id, list_ids or None)
        return Response(_("You are unsubscribed.") + "\n", mimetype="text/plain")
    preferences_url = url_for("public.preferences", token=tokens.preferences_token(subscriber_id))
    if request.method == "POST" and request.form.get("action") == "rejoin":
        return _rejoin(subscriber_id, list_ids, preferences_url)
    departure = subscriptions.departure(subscriber_id, list_ids) if request.method == "GET" else None
    if departure is not None:  # a revisit: say so, rather than offer to leave again
        return render_template("public/unsubscribed_already.html", departure=departure,
                               names=_names(departure.list_ids), preferences_url=preferences_url)
    if request.method == "POST":
        action = request.form.get("action")
        if action not in ("lists", "all"):
            abort(400, description=_("Choose which lists to leave."))
        leave_all = action == "all" or not list_ids
        subscriptions.unsubscribe(subscriber_id, None if leave_all else list_ids)
        return render_template("public/unsubscribed.html", all=leave_all, names=_names(list_ids),
                               preferences_url=preferences_url)
    return render_template("public/unsubscribe.html", names=_names(list_ids), preferences_url=preferences_url)


def _rejoin(subscriber_id: int, list_ids: list[int], preferences_url: str) -> str:
    departure = subscriptions.departure(subscriber_id, list_ids)
    if departure is None or not departure.list_ids:
        abort(400, description=_("There is nothing to rejoin from this link."))
    if departure.suppressed:
        return render_template("public/message.html", title=_("Your address is on our do-not-mail list"),
                               text=_("You left all our lists, so we do not email you at all. "
                                      "Contact us if you want to hear from us again."))
    result = subscriptions.rejoin(subscriber_id, departure.list_ids, **_client())
    names = ", ".join(_names(departure.list_ids))
    if _ask_to_confirm(result):
        return render_template("public/message.html", title=_("Check your inbox"),
                               text=_("We emailed you a link to confirm %(names)s. You are back on once you click it.",
                                      names=names))
    return render_template("public/message.html", title=_("Welcome back"),
                           text=_("You are subscribed to %(names)s again.", names=names),
                           action=(_("Manage your subscriptions"), preferences_url))


def _preferences_page(subscriber: Subscriber, form: PreferencesForm, erase_form: EraseForm, status: int = 200):
    return render_template(
        "public/preferences.html", subscriber=subscriber, form=form, erase_form=erase_form,
        export_form=ConfirmForm(), suppressed=suppressions.is_suppressed(subscriber.email),
        pending={s.list_id for s in subscriber.subscriptions if s.status == SubscriptionStatus.UNCONFIRMED},
    ), status


def _subscriber(token: str) -> Subscriber:
    """The subscriber a preferences token names; a "your data was erased" page once erased."""
    subscriber = db.session.get(Subscriber, _payload("preferences", token)["s"])
    if subscriber is None or subscriber.email.endswith(ERASED_DOMAIN):
        page = render_template("public/message.html", title=_("Your data was erased"),
                               text=_("We no longer hold your address or any other personal data, "
                                      "and we will not email you again."))
        abort(make_response(page, 410))
    return subscriber


def _lists_form(subscriber: Subscriber) -> PreferencesForm:
    current = {s.list_id: s for s in subscriber.subscriptions if s.status != SubscriptionStatus.UNSUBSCRIBED}
    shown = {m.id: m for m in lists_service.public_lists()}
    shown.update({s.list_id: s.mailing_list for s in current.values()})
    form = PreferencesForm()
    form.mailing_lists = sorted(shown.values(), key=lambda m: (m.name, m.id))  # for the template
    form.lists.choices = [(m.id, m.name) for m in form.mailing_lists]
    form.language.choices = [SelectChoice(tag, name) for tag, name in languages.choices(subscriber.language)]
    if request.method == "GET":
        form.name.data, form.lists.data = subscriber.name, sorted(current)
        form.language.data = subscriber.language or browser_language() or languages.DEFAULT
    return form


@bp.route("/preferences/<token>", methods=["GET", "POST"])
def preferences(token: str):
    subscriber = _subscriber(token)
    form = _lists_form(subscriber)
    if not form.validate_on_submit():
        return _preferences_page(subscriber, form, EraseForm(formdata=None), 400 if form.errors else 200)
    try:
        result = subscriptions.set_lists(subscriber.id, form.lists.data or [], name=form.name.data or "",
                                         language=form.language.data or None, **_client())
    except ValidationError as exc:
        form.name.errors.append(localized(exc))
        return _preferences_page(subscriber, form, EraseForm(formdata=None), 400)
    use_language(form.language.data)  # the answer speaks the language just chosen
    if _ask_to_confirm(result):
        flash(_("Saved. Please confirm the new lists with the link we just emailed you."), "success")
    elif result.suppressed:
        flash(_("Saved, but your address is on our do-not-mail list, so you cannot join lists."), "info")
    else:
        flash(_("Your preferences are saved."), "success")
    return redirect(url_for("public.preferences", token=token))


@bp.post("/preferences/<token>/export")
def export(token: str):
    subscriber = _subscriber(token)  # the global CSRF check has vetted the form already
    body = json.dumps(gdpr.export_subscriber(subscriber.id), indent=2, ensure_ascii=False)
    return Response(body, mimetype="application/json",
                    headers={"Content-Disposition": 'attachment; filename="my-data.json"'})


@bp.post("/preferences/<token>/erase")
def erase(token: str):
    subscriber = _subscriber(token)
    erase_form = EraseForm()
    if not erase_form.validate_on_submit():
        return _preferences_page(subscriber, _lists_form(subscriber), erase_form, 400)
    gdpr.erase_subscriber(subscriber.id)
    return redirect(url_for("public.preferences", token=token))


@bp.route("/manage", methods=["GET", "POST"])
@limiter.limit("5 per minute; 30 per hour", methods=["POST"])
@limiter.limit("5 per hour", key_func=_address_key, methods=["POST"])
def manage():
    form = ManageForm()
    if form.validate_on_submit():
        try:
            email = addresses.normalize_email(form.email.data)
        except ValidationError as exc:
            form.email.errors.append(localized(exc))
        else:
            subscriber_id = subscriber_id_by_email(email)
            notification_id = audience_mail.queue_manage_link(subscriber_id) if subscriber_id is not None else None
            if notification_id is not None:
                enqueue(send_notification, notification_id)
            # The same answer either way, so the form cannot tell who is on our lists.
            return redirect(url_for("public.manage_sent"))
    return render_template("public/manage.html", form=form), 400 if form.errors else 200


@bp.get("/manage/sent")
def manage_sent():
    return render_template("public/message.html", title=_("Check your inbox"),
                           text=_("If we know this address, we have sent it a link to manage your "
                                  "subscriptions. The link works for %(hours)s hours.",
                                  hours=tokens.MANAGE_MAX_AGE // 3600))


@bp.get("/manage/<token>")
def manage_link(token: str):
    payload = _payload("manage", token, tokens.MANAGE_MAX_AGE, url_for("public.manage"))
    return redirect(url_for("public.preferences", token=tokens.preferences_token(payload["s"])))


@bp.get("/view/<token>")
def web_view(token: str):
    """The campaign as its recipient saw it (the `web_view_url` in every campaign email)."""
    payload = _payload("view", token)
    try:
        campaign = campaigns.get(int(payload.get("c") or 0))
        values = {**campaigns.current_values(campaign), "id": campaign.id}
        subscriber_id = payload["s"] or None
        if subscriber_id is not None and db.session.get(Subscriber, subscriber_id) is None:
            subscriber_id = None  # erased since: show the sample rendering
        if subscriber_id is not None:  # the variant this subscriber was sent (their language's)
            values = campaign_translations.localized(values, subscriber_language(subscriber_id))
        rendered = campaigns.render_preview(values, subscriber_id, live_links=True)
    except (LookupError, ValidationError):
        abort(404, description=_("This email is no longer available."))
    response = make_response(web_view_document.as_page(rendered.html, rendered.subject))
    # User-written HTML: no scripts, no forms posting anywhere, no plugins.
    response.headers["Content-Security-Policy"] = ("sandbox; default-src 'none'; img-src * data:; "
                                                   "style-src 'unsafe-inline'")
    return response

"""/api/v1/segments: saved rules over subscribers, their live count and a preview of who matches.

The rules are JSON (docs/segments.md): a group `{"match": "all"|"any", "rules": [...]}` of
conditions and groups. Rules that are not valid are a 400 whose `errors[0].field` is the JSON
path of the first bad part, such as `rules.rules[1].rules[0].op`.
"""
from __future__ import annotations

from typing import Any

import marshmallow as ma

from ...models import Segment, Subscriber, SubscriberStatus
from ...services.audience.segments import segments
from ...services.audience.segments.rules import RuleError
from .core import InSchema, PageArgs, decode_cursor, page, page_schema, problem, resource_blueprint

bp = resource_blueprint("segments", "/segments", "Segments: subscribers chosen by rules, counted and previewed live.")

RULES_HELP = ('The root group: `{"match": "all" | "any", "rules": [condition or group, ...]}`. Conditions: '
              "attribute, email_domain, status, list, signup_date, engagement, bounce (see docs/segments.md). "
              "Engagement conditions see only campaigns tracked in `individual` mode.")


@bp.errorhandler(RuleError)
def _bad_rules(error: RuleError) -> Any:
    return problem(400, f"{error.field}: {error.message}", [{"field": error.field, "message": error.message}])


def _rules(**kwargs: Any) -> ma.fields.Dict:
    return ma.fields.Dict(keys=ma.fields.String(), metadata={"description": RULES_HELP}, **kwargs)


class SegmentOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    rules = _rules(required=True)
    created_at = ma.fields.DateTime(required=True)
    updated_at = ma.fields.DateTime(required=True)


class SegmentIn(InSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(1, 200))
    description = ma.fields.String(load_default="", validate=ma.validate.Length(max=5000))
    rules = _rules(required=True)


class SegmentPatch(InSchema):
    name = ma.fields.String(validate=ma.validate.Length(1, 200))
    description = ma.fields.String(validate=ma.validate.Length(max=5000))
    rules = _rules()


class CountIn(InSchema):
    rules = _rules(required=True)
    exact = ma.fields.Boolean(load_default=False, metadata={
        "description": "Wait for the exact count however long it takes. By default the answer is exact when "
                       "the database gives it within ~0.1 s, else an estimate (`exact` false, with `margin`)."})


class CountOut(ma.Schema):
    count = ma.fields.Integer(required=True, metadata={"description": "Subscribers matching, in any status (a "
                                                                      "campaign then keeps the confirmed, "
                                                                      "unsuppressed ones)."})


class LiveCountOut(CountOut):
    exact = ma.fields.Boolean(required=True, metadata={"description": "False: `count` is an estimate from a "
                                                       "random sample of the subscribers; ask again with "
                                                       "`exact: true` for the figure."})
    margin = ma.fields.Integer(required=True, metadata={"description": "An estimate's 95 % interval is "
                                                        "`count` ± `margin` (0 when exact)."})


class PreviewArgs(InSchema):
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(1, segments.PREVIEW_LIMIT))


class MatchOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    email = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    status = ma.fields.Enum(SubscriberStatus, by_value=True, required=True)
    attributes = ma.fields.Dict(keys=ma.fields.String(), required=True)
    created_at = ma.fields.DateTime(required=True)


class PreviewOut(ma.Schema):
    count = ma.fields.Integer(required=True)
    items = ma.fields.List(ma.fields.Nested(MatchOut), required=True,
                           metadata={"description": "The first matching subscribers, oldest first."})


@bp.route("", methods=["POST"])
@bp.arguments(SegmentIn)
@bp.response(201, SegmentOut)
@bp.alt_response(400, response="BAD_REQUEST")
def create(body: dict[str, Any]) -> Segment:
    """Save a segment."""
    return segments.create(**body)


@bp.route("", methods=["GET"])
@bp.arguments(PageArgs, location="query")
@bp.response(200, page_schema(SegmentOut, "SegmentPage"))
def index(args: dict[str, Any]) -> dict[str, Any]:
    """All segments, oldest first."""
    return page(segments.oldest_first(decode_cursor(args["cursor"]), args["limit"] + 1), args["limit"])


@bp.route("/count", methods=["POST"])
@bp.arguments(CountIn)
@bp.response(200, LiveCountOut)
def count(body: dict[str, Any]) -> dict[str, Any]:
    """Count who matches unsaved rules (the live count while editing); nothing is saved. Exact, or
    when that takes longer than ~0.1 s an estimate with its margin (`exact: true` waits)."""
    found = segments.live_count(body["rules"], exact=body["exact"])
    return {"count": found.value, "exact": found.exact, "margin": found.margin}


@bp.route("/<int:segment_id>", methods=["GET"])
@bp.response(200, SegmentOut)
def read(segment_id: int) -> Segment:
    """One segment."""
    return segments.get(segment_id)


@bp.route("/<int:segment_id>", methods=["PATCH"])
@bp.arguments(SegmentPatch)
@bp.response(200, SegmentOut)
def patch(body: dict[str, Any], segment_id: int) -> Segment:
    """Change a segment's name, description or rules."""
    return segments.update(segment_id, **body)


@bp.route("/<int:segment_id>", methods=["DELETE"])
@bp.response(204)
def delete(segment_id: int) -> None:
    """Delete a segment; campaigns that targeted it no longer do (sent ones keep their recipients)."""
    segments.delete(segment_id)


@bp.route("/<int:segment_id>/subscribers", methods=["GET"])
@bp.arguments(PreviewArgs, location="query")
@bp.response(200, PreviewOut)
def preview(args: dict[str, Any], segment_id: int) -> dict[str, Any]:
    """How many match the saved segment now, and the first of them."""
    rules = segments.get(segment_id).rules
    items: list[Subscriber] = segments.preview(rules, args["limit"])
    return {"count": segments.count(rules), "items": items}

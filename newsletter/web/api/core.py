"""What every /api/v1 resource shares: the Api object, bearer-key auth, problem+json errors
(RFC 9457) and cursor pagination.

Resources are flask-smorest blueprints made with `resource_blueprint`, so the OpenAPI
document is generated from the same schemas that parse requests and shape responses.
"""
from __future__ import annotations

import base64
import binascii
import http
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import marshmallow as ma
from flask import Flask, g, jsonify, request
from flask_login import current_user
from flask_smorest import Api, Blueprint
from flask_smorest.utils import prepare_response
from werkzeug.exceptions import HTTPException

from ...extensions import csrf
from ...models import Role
from ...services.accounts import api_keys
from ...services.errors import Conflict, NotFound, ValidationError
from ...services.numbers import MAX_ID

PREFIX = "/api/v1"
PROBLEM = "application/problem+json"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# JSON nested deeper than any resource is refused before parsing recurses into it: the parser,
# the NUL check and marshmallow all recurse, and at ~1,000 levels Python gives up (a 500).
MAX_JSON_DEPTH = 64
# Documentation routes a signed-in user may also open in the browser (reads only).
DOC_ENDPOINTS = frozenset({"api-docs.openapi_json", "api-docs.openapi_swagger_ui"})


# Errors ---------------------------------------------------------------------------------------

class FieldErrorSchema(ma.Schema):
    field = ma.fields.String(required=True, metadata={"description": "Dotted path of the field."})
    message = ma.fields.String(required=True)


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, with `errors` listing each refused field."""
    type = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String()
    errors = ma.fields.List(ma.fields.Nested(FieldErrorSchema))


def problem(status: int, detail: str = "", errors: Sequence[dict[str, str]] = (),
            headers: dict[str, str] | None = None) -> Any:
    body: dict[str, Any] = {"type": "about:blank", "title": http.HTTPStatus(status).phrase, "status": status}
    if detail:
        body["detail"] = detail
    if errors:
        body["errors"] = list(errors)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM
    response.headers.update(headers or {})
    return response


def _flatten(messages: Any, path: str = "") -> list[dict[str, str]]:
    """webargs/marshmallow's nested {"json": {"email": ["..."]}} as [{field, message}]."""
    if isinstance(messages, dict):
        out = []
        for key, value in messages.items():
            if not path and key in ("json", "query", "form", "files", "headers", "path", "view_args"):
                out += _flatten(value, "")
            else:
                out += _flatten(value, f"{path}.{key}" if path else str(key))
        return out
    if isinstance(messages, (list, tuple)) and messages and all(isinstance(m, str) for m in messages):
        return [{"field": path or "body", "message": m} for m in messages]
    if isinstance(messages, (list, tuple)):
        return [e for m in messages for e in _flatten(m, path)]
    return [{"field": path or "body", "message": str(messages)}]


def http_problem(error: HTTPException) -> Any:
    """Any HTTP error raised under /api/ (including webargs' 422) as problem+json."""
    code = error.code or 500
    data = getattr(error, "data", None) or {}
    errors = _flatten(data.get("messages") or data.get("errors") or {})
    if data.get("message"):
        detail = data["message"]
    elif errors:  # a 400 has one error ("Invalid JSON body."): say it rather than "invalid fields"
        detail = "Some fields are invalid." if code == 422 else errors[0]["message"]
    else:
        detail = error.description or ""
    if code >= 500:
        detail = "Something went wrong on our side."
    headers = dict(data.get("headers") or {})
    if code == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="api"'
    if code == 405 and hasattr(error, "valid_methods") and error.valid_methods:
        headers["Allow"] = ", ".join(error.valid_methods)
    return problem(code, detail, errors, headers)


def service_problem(error: NotFound | Conflict | ValidationError) -> Any:
    """A service's NotFound as a 404, Conflict (StateConflict too) as a 409, ValidationError as a 422."""
    if isinstance(error, NotFound):
        return problem(404, str(error))
    status = 409 if isinstance(error, Conflict) else 422
    return problem(status, error.message, [{"field": error.field, "message": error.message}])


# The Api object -------------------------------------------------------------------------------

class StandardResponses:
    """An apispec plugin: what every operation can answer besides its own statuses.

    401 and 403 (auth runs first), 404 where the path takes an id, 400 everywhere (a NUL
    character in any parameter, see web/input_guard.py; a body that is not JSON at all or is
    nested too deeply; a wrong one is a 422), and 413 where a body is read (web/body_limits.py).
    """

    def init_spec(self, spec: Any) -> None:
        self.spec = spec

    def operation_helper(self, path: str | None = None, operations: dict | None = None, **_: Any) -> None:
        for operation in (operations or {}).values():
            responses = operation.setdefault("responses", {})
            responses.setdefault("401", "UNAUTHORIZED")
            responses.setdefault("403", "FORBIDDEN")
            if path and "{" in path:
                responses.setdefault("404", "NOT_FOUND")
            responses.setdefault("400", "BAD_REQUEST")
            if "requestBody" in operation:
                responses.setdefault("413", http.HTTPStatus(413).name)

    # apispec calls these hooks on every plugin
    def schema_helper(self, *a: Any, **k: Any) -> None: return None
    def parameter_helper(self, *a: Any, **k: Any) -> None: return None
    def response_helper(self, *a: Any, **k: Any) -> None: return None
    def path_helper(self, *a: Any, **k: Any) -> None: return None
    def header_helper(self, *a: Any, **k: Any) -> None: return None


class PlatformApi(Api):
    ERROR_SCHEMA = ProblemSchema
    # No catch-all "default" response: each operation lists the statuses it can answer, so a
    # client (and the contract test) learns of a new one from the document, not in production.
    DEFAULT_ERROR_RESPONSE_NAME = None

    def register_blueprint(self, blp: Any, *, parameters: Any = None, **options: Any) -> None:
        """flask-smorest lists the group under the blueprint's name; a ResourceBlueprint's tag
        names it instead (the operations carry the same tag, see ResourceBlueprint)."""
        tag = getattr(blp, "tag", None)
        spec_tag = self.spec.tag
        if tag:
            self.spec.tag = lambda entry: spec_tag({**entry, "name": tag})
        try:
            super().register_blueprint(blp, parameters=parameters, **options)
        finally:
            if tag:
                del self.spec.tag

    def _register_error_handlers(self) -> None:
        """The app's own handler answers /api/ paths with problem+json (see `register_api`)."""

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "An error, as problem details (RFC 9457).", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)


api = PlatformApi()


class ResourceBlueprint(Blueprint):
    """A flask-smorest blueprint whose group in the API document has a human name ("Campaigns")
    while its endpoints keep the blueprint's own ("api_campaigns.create")."""

    def __init__(self, *args: Any, tag: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tag = tag

    def add_url_rule(self, *args: Any, tags: list[str] | None = None, **kwargs: Any) -> None:
        super().add_url_rule(*args, tags=[self.tag] if tags is None else tags, **kwargs)


def resource_blueprint(name: str, url_prefix: str, description: str) -> Blueprint:
    """A blueprint under /api/v1 whose service errors become 404/409/422 problems; its group in
    the document is named after it in words ("bulk_things" -> "Bulk things")."""
    bp = ResourceBlueprint(f"api_{name}", __name__, url_prefix=f"{PREFIX}{url_prefix}", description=description,
                           tag=name.replace("_", " ").capitalize())
    for error in (NotFound, Conflict, ValidationError):
        bp.register_error_handler(error, service_problem)
    return bp


# Auth -----------------------------------------------------------------------------------------

def needed_role() -> Role:
    return Role.VIEWER if request.method in SAFE_METHODS else Role.MARKETER


def authenticate() -> Any:
    """Runs before every /api/ request: a valid bearer key with a role allowing the method."""
    if not request.path.startswith("/api/"):
        return None
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    key = api_keys.authenticate(raw.strip()) if scheme.lower() == "bearer" and raw.strip() else None
    if key is not None:
        g.api_key_id, role = key.id, key.role
    elif (request.endpoint in DOC_ENDPOINTS and request.method in SAFE_METHODS
          and current_user.is_authenticated and current_user.active):
        g.api_key_id, role = None, current_user.role
    else:
        return problem(401, "Send a valid API key as `Authorization: Bearer <key>`.",
                       headers={"WWW-Authenticate": 'Bearer realm="api"'})
    if not role.allows(needed_role()):
        return problem(403, f"This API key's role ({role.value}) may not do this; "
                            f"it needs {needed_role().value} or above.")
    return None


# JSON bodies --------------------------------------------------------------------------------

def _depth_beyond(value: Any, limit: int) -> bool:
    """Whether lists/objects nest more than `limit` levels (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            if level > limit:
                return True
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def bounded_json() -> Any:
    """Runs after `authenticate`: a JSON body nested too deeply is a 400, whatever the route."""
    if not (request.path.startswith("/api/") and request.is_json):
        return None
    try:  # silent: a body that is not JSON at all gets webargs' own 400 later
        too_deep = _depth_beyond(request.get_json(silent=True), MAX_JSON_DEPTH)
    except RecursionError:
        too_deep = True
    if too_deep:
        return problem(400, f"The JSON body is nested too deeply: at most {MAX_JSON_DEPTH} levels of "
                            "arrays and objects.", [{"field": "body", "message": "Nested too deeply."}])
    return None


# Schemas ------------------------------------------------------------------------------------

def _bad_text(value: Any, path: str = "") -> tuple[str, str] | None:
    """(field, reason) for the first string a database cannot store (NUL, lone surrogates)."""
    if isinstance(value, str):
        if "\x00" in value:
            return path, "Must not contain NUL characters."
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return path, "Must be valid Unicode text."
        return None
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if (found := _bad_text(key, path)) and isinstance(key, str):
            return found
        if found := _bad_text(item, f"{path}.{key}" if path else str(key)):
            return found
    return None


INTEGER_RANGE = ma.validate.Range(-MAX_ID - 1, MAX_ID)


def _fits_integer_column(field: ma.fields.Field) -> bool:
    return any(isinstance(v, ma.validate.Range) and v.min is not None and v.max is not None
               and INTEGER_RANGE.min <= v.min and v.max <= INTEGER_RANGE.max for v in field.validators)


class InSchema(ma.Schema):
    """Base for request schemas: text or numbers a database cannot store are a 422, never a 500."""

    def on_bind_field(self, field_name: str, field_obj: ma.fields.Field) -> None:
        """Every integer is bounded to an INTEGER column's range (and the document says so)."""
        if isinstance(field_obj, ma.fields.Integer) and not _fits_integer_column(field_obj):
            field_obj.validators = [*field_obj.validators, INTEGER_RANGE]

    @ma.pre_load
    def storable_text(self, data: Any, **_: Any) -> Any:
        if hasattr(data, "to_dict"):  # query args / form: a MultiDict
            found = _bad_text(data.to_dict(flat=False))
        else:
            found = _bad_text(data)
        if found:
            field, reason = found
            raise ma.ValidationError({(field.split(".")[0] or "body"): [reason]})
        return data


# Cursor pagination ----------------------------------------------------------------------------

class PageArgs(InSchema):
    cursor = ma.fields.String(load_default=None, metadata={"description": "`next_cursor` of the previous page."})
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(1, 200))


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if not cursor:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if text.startswith("id:") and text[3:].isdigit() and int(text[3:]) < 2**63:  # BIGINT ids
            return int(text[3:])
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise ValidationError("cursor", "Not a cursor this API returned.")


def page(rows: Sequence[Any], limit: int, key: Callable[[Any], int] = lambda row: row.id) -> dict[str, Any]:
    """`rows` fetched with limit + 1: the extra row only says whether another page exists."""
    more = len(rows) > limit
    items = list(rows[:limit])
    return {"items": items, "next_cursor": encode_cursor(key(items[-1])) if more and items else None}


def page_schema(item: type[ma.Schema] | ma.Schema, name: str) -> type[ma.Schema]:
    """`{items: [...], next_cursor}` for one item schema."""
    return ma.Schema.from_dict({
        "items": ma.fields.List(ma.fields.Nested(item), required=True),
        "next_cursor": ma.fields.String(allow_none=True, required=True),
    }, name=name)


# Registration ---------------------------------------------------------------------------------

def register_api(app: Flask, blueprints: Sequence[Blueprint]) -> None:
    app.config.setdefault("API_TITLE", "Newsletter platform API")
    app.config.setdefault("API_VERSION", "v1")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "docs")
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", "/static/vendor/swagger-ui/")
    api.init_app(app, spec_kwargs={
        "extra_plugins": [StandardResponses()],
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    })
    app.before_request(authenticate)
    app.before_request(bounded_json)
    for bp in blueprints:
        api.register_blueprint(bp)
        csrf.exempt(bp)

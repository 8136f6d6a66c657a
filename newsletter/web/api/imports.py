"""/api/v1/imports: CSV uploads applied in the background, with their reports."""
from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask_smorest.fields import Upload
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import CombinedMultiDict, FileStorage

from ...models import ImportJob, ImportMode, ImportStatus
from ...services.audience import imports
from ...tasks import enqueue
from ...tasks.imports import run_import
from .core import MAX_ID, InSchema, PageArgs, decode_cursor, page, page_schema, resource_blueprint

bp = resource_blueprint("imports", "/imports", "CSV imports of subscribers and their reports.")


class MultipartParser(FlaskParser):
    """webargs' "files" location holds only the file parts; an upload's options are form parts
    of the same multipart/form-data body, so here it holds both."""

    def load_files(self, req: Any, schema: ma.Schema) -> Any:
        return self._makeproxy(CombinedMultiDict([req.files, req.form]), schema)


bp.ARGUMENTS_PARSER = MultipartParser()


class CsvFile(Upload):
    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> FileStorage:
        if not isinstance(value, FileStorage):
            raise ma.ValidationError("Send the CSV as a file part of a multipart/form-data body.")
        return value


class ImportIn(InSchema):
    file = CsvFile(required=True, metadata={"description": "UTF-8 CSV whose first row names the columns; "
                                                           "one must be `email`."})
    list_ids = ma.fields.List(ma.fields.Integer(validate=ma.validate.Range(1, MAX_ID)), load_default=list,
                              validate=ma.validate.Length(max=1000),
                              metadata={"description": "Lists to add everyone to; one form field per id."})
    mode = ma.fields.String(load_default=ImportMode.CONFIRMED.value,
                            validate=ma.validate.OneOf([m.value for m in ImportMode]),
                            metadata={"description": "confirmed: add as confirmed; optin: add unconfirmed and "
                                                     "send the opt-in email; update: existing subscribers only."})
    overwrite_attributes = ma.fields.Boolean(load_default=False,
                                             metadata={"description": "Replace attributes instead of merging."})


class RowErrorOut(ma.Schema):
    row = ma.fields.Integer(required=True, metadata={"description": "Row number; the header is row 1."})
    email = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)


class ImportOut(ma.Schema):
    id = ma.fields.Integer(required=True)
    status = ma.fields.Enum(ImportStatus, by_value=True, required=True)
    filename = ma.fields.String(required=True)
    mode = ma.fields.Enum(ImportMode, by_value=True, required=True)
    list_ids = ma.fields.List(ma.fields.Integer(), required=True)
    progress = ma.fields.Float(required=True, metadata={"description": "0 to 1, by bytes read."})
    rows = ma.fields.Integer(required=True)
    created = ma.fields.Integer(required=True)
    updated = ma.fields.Integer(required=True)
    unchanged = ma.fields.Integer(required=True)
    suppressed = ma.fields.Integer(required=True)
    invalid = ma.fields.Integer(required=True)
    duplicates = ma.fields.Integer(required=True)
    not_found = ma.fields.Integer(required=True)
    left_lists = ma.fields.Integer(required=True, metadata={
        "description": "Existing subscribers who had left one of list_ids: that membership stays unsubscribed."})
    skipped = ma.fields.List(ma.fields.Nested(RowErrorOut), required=True, metadata={
        "description": f"The first {imports.SHOWN_ERRORS} rows skipped as suppressed or not added back to a "
                       "list they had left, each with why."})
    errors = ma.fields.List(ma.fields.Nested(RowErrorOut), required=True,
                            metadata={"description": f"The first {imports.SHOWN_ERRORS} invalid rows."})
    failure = ma.fields.String(required=True, allow_none=True,
                               metadata={"description": "Why a failed import stopped: \"Nothing was imported.\" or "
                                                           "\"Partially imported: the first N rows were applied "
                                                           "…, stopped at row R.\", then the reason."})
    created_at = ma.fields.DateTime(required=True)
    started_at = ma.fields.DateTime(required=True, allow_none=True)
    finished_at = ma.fields.DateTime(required=True, allow_none=True)


@bp.route("", methods=["POST"])
@bp.arguments(ImportIn, location="files", unknown=ma.RAISE)
@bp.response(202, ImportOut)
@bp.alt_response(413, response="REQUEST_ENTITY_TOO_LARGE")
def create(body: dict[str, Any]) -> ImportJob:
    """Upload a CSV and queue its import; poll GET /imports/{id} for the report.

    A file that is not usable as a whole (not UTF-8 CSV, no `email` column) is a 422 and
    nothing is kept.
    """
    upload = body.pop("file")
    job = imports.start(upload.stream, upload.filename or "", **body)
    enqueue(run_import, job.id)  # after start() committed the job
    return job


@bp.route("", methods=["GET"])
@bp.arguments(PageArgs, location="query")
@bp.response(200, page_schema(ImportOut, "ImportPage"))
def index(args: dict[str, Any]) -> dict[str, Any]:
    """All imports, oldest first."""
    return page(imports.oldest_first(decode_cursor(args["cursor"]), args["limit"] + 1), args["limit"])


@bp.route("/<int:import_id>", methods=["GET"])
@bp.response(200, ImportOut)
def read(import_id: int) -> ImportJob:
    """One import: its status and report."""
    return imports.get(import_id)

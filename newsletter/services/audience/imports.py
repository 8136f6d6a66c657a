"""CSV imports: accept an upload, then apply it in atomic, resumable batches.

Each batch commits together with the job's counters, so the report always matches what was
written, a crash never leaves half a batch, and a retried task resumes after the last
committed batch. A row that breaks a limit (the address, or attributes past what the API and
the admin form accept) is an invalid row in the report; a file the CSV parser cannot read to
the end fails before anything is written. A job that stops halfway anyway (the database gone
for good, a bug) says so: how many rows were applied and at which row it stopped.
"""
from __future__ import annotations

import csv
import queue
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

from flask import current_app
from sqlalchemy import select, update

from ...extensions import db
from ...metrics import instruments as metrics
from ...models import ImportJob, ImportMode, ImportStatus, Subscriber, dialect
from ...models.base import utcnow
from .. import audit, languages
from ..addresses import normalize_email
from ..errors import NotFound, ValidationError
from ..messages import N_, Message
from ..text import one_line
from ..webhooks import webhooks
from . import csv_files, import_reasons, import_writer, statistics
from . import lists as lists_service
from . import subscribers as subscribers_service

BATCH_SIZE = 10_000
SHOWN_ERRORS = 100
SHOWN_CELL = 254  # characters of an invalid row's address cell kept in the report (the longest address)
# Past this many rows written, the planner's statistics are refreshed at the end (a list
# export planned on pre-import statistics sorted the whole list for every batch).
ANALYZE_AFTER = 10_000
YIELD_EVERY = 256  # rows the reader thread parses between offering the GIL back
OnBatch = Callable[[list[tuple[int, int]]], None]  # memberships created unconfirmed (opt-in mode)


def _directory() -> Path:
    path = Path(current_app.config["INSTANCE_PATH"]) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def start(stream: BinaryIO, filename: str, *, list_ids: Iterable[int] = (), mode: str = "confirmed",
          overwrite_attributes: bool = False, created_by_id: int | None = None) -> ImportJob:
    """Store the upload and queue a job; ValidationError (nothing kept) if it is not usable."""
    try:
        mode_value = ImportMode(mode)
    except ValueError:
        raise ValidationError("mode", 'mode must be "confirmed", "optin" or "update".') from None
    wanted = lists_service.existing_ids(list(list_ids))
    if mode_value == ImportMode.OPTIN and not wanted:
        raise ValidationError("list_ids", "Opt-in imports need at least one list to confirm.")
    path = _directory() / f"{uuid.uuid4().hex}.csv"
    with open(path, "wb") as target:
        shutil.copyfileobj(stream, target, 1 << 20)  # streamed: the upload never sits in memory
    try:
        layout = csv_files.inspect(path)
        _check_columns(layout)
    except ValidationError:
        path.unlink(missing_ok=True)
        raise
    job = ImportJob(filename=_display_name(filename), path=str(path), size_bytes=path.stat().st_size,
                    mode=mode_value, overwrite_attributes=overwrite_attributes, list_ids=wanted,
                    delimiter=layout.delimiter, created_by_id=created_by_id)
    db.session.add(job)
    db.session.flush()
    audit.record("import.started", "import", job.id, filename=job.filename, mode=mode_value, list_ids=wanted)
    db.session.commit()
    return job


def _display_name(filename: str | None) -> str:
    """The upload's name as sent, minus what the database cannot store (NUL, lone surrogates)."""
    name = (filename or "").replace("\x00", "").encode("utf-8", "ignore").decode("utf-8")
    return name[:255] or "upload.csv"


def _check_columns(layout: csv_files.CsvLayout) -> None:
    """Every other column becomes an attribute of that name: the same names the API takes."""
    for _, key in layout.attribute_columns:
        try:
            subscribers_service.check_attribute_key(key)
        except ValidationError as exc:
            raise ValidationError("file", "A column name in the first row cannot be an attribute. %(reason)s",
                                  reason=exc.text) \
                from None


def get(job_id: int) -> ImportJob:
    job = db.session.get(ImportJob, job_id)
    if job is None:
        raise NotFound("import", job_id)
    return job


def recent(limit: int = 50) -> list[ImportJob]:
    return list(db.session.scalars(select(ImportJob).order_by(ImportJob.id.desc()).limit(limit)))


def oldest_first(after: int | None = None, limit: int = 50) -> list[ImportJob]:
    """Up to `limit` jobs with ids above `after`, oldest first (API pages)."""
    query = select(ImportJob).order_by(ImportJob.id).limit(limit)
    if after is not None:
        query = query.where(ImportJob.id > after)
    return list(db.session.scalars(query))


def invalid_report_path(job: ImportJob) -> Path:
    return Path(job.path + ".invalid.csv")


def row_reason(entry: dict[str, Any], gettext: Callable[[str], str], say_date: Callable[[date], str]) -> str:
    """Why a report row (`job.skipped`, `job.errors`) was skipped or invalid, in the language of
    `gettext` with its dates written by `say_date`; a row stored before reasons had keys, as stored."""
    return import_reasons.said(entry, gettext, say_date)


def fail(job_id: int, reason: str) -> None:
    """End the job as failed, saying what was applied: nothing, or the rows before row R.

    `reason` is a sentence for the person who uploaded the file, never an exception's text.
    """
    db.session.rollback()
    job = get(job_id)
    job.status, job.failure, job.finished_at = ImportStatus.FAILED, _failure(job, reason)[:2000], utcnow()
    db.session.commit()
    Path(job.path).unlink(missing_ok=True)


def _failure(job: ImportJob, reason: str) -> str:
    if not job.rows:
        return f"Nothing was imported. {reason}"
    stopped = _row_after(job)
    where = f"stopped at row {stopped:,}" if stopped else "stopped after the last row"
    return (f"Partially imported: the first {job.rows:,} rows were applied ({job.created:,} new, "
            f"{job.updated:,} updated, {job.invalid:,} invalid), {where}. {reason} "
            "Importing the same file again applies the rest; the rows already applied are not duplicated.")


def _row_after(job: ImportJob) -> int | None:
    """The spreadsheet row number of the first row not applied (None if it cannot be read)."""
    try:
        with csv_files.RowReader(job.path, job.delimiter) as reader:
            for seen, (number, _) in enumerate(reader, start=1):
                if seen > job.rows:
                    return number
    except (OSError, ValueError, csv.Error):  # the upload is gone or unreadable past this point
        return None
    return None


class _Batch:
    """Rows of one batch, sorted into what happens to each."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, str, str, dict, str | None]] = []  # row, email, name, attributes, COPY line
        self.invalid: list[tuple[int, str, Message]] = []  # row, address cell, why
        self.languages: dict[str, str] = {}  # email -> the `language` column's tag, where given
        self.duplicates = 0
        self.read = 0


def run(job_id: int, on_batch: OnBatch | None = None, batch_size: int = BATCH_SIZE) -> ImportJob:
    """Apply the job's file; resumes after the last committed batch. Safe to call twice."""
    job = get(job_id)
    if job.status in (ImportStatus.DONE, ImportStatus.FAILED):
        return job
    job.status, job.started_at = ImportStatus.RUNNING, job.started_at or utcnow()
    db.session.commit()
    try:
        csv_files.check_utf8(job.path)
        csv_files.check_rows(job.path, job.delimiter)  # before the first batch commits
        with csv_files.RowReader(job.path, job.delimiter) as reader:
            layout = csv_files.layout_from_header(reader.header, job.delimiter)
            _check_columns(layout)
            rows = iter(reader)
            seen = _skip_done(job, rows, layout)
            _truncate_report(job)
            line = import_writer.stage_line if dialect.is_postgresql() else None
            for batch, position in _prefetch(rows, layout, seen, batch_size, lambda: reader.position, line):
                created = _apply(job, batch, position)
                if on_batch and created:
                    on_batch(created)
    except ValidationError as exc:
        fail(job_id, exc.message)
        return get(job_id)
    job = get(job_id)
    job.status, job.finished_at, job.bytes_done = ImportStatus.DONE, utcnow(), job.size_bytes
    db.session.commit()
    Path(job.path).unlink(missing_ok=True)  # the upload holds personal data; the report stays
    if job.created + job.updated >= ANALYZE_AFTER:
        statistics.refresh(db.session.connection())
        db.session.commit()
    return job


def _parse(fields: list[str], layout: csv_files.CsvLayout) -> tuple[str, dict]:
    """(name, attributes) of a row; ValidationError if they break the API's limits."""
    index = layout.name_index
    name = fields[index].strip() if index is not None and index < len(fields) else ""
    attributes = {key: fields[i].strip() for i, key in layout.attribute_columns
                  if i < len(fields) and fields[i].strip()}
    # The API's rules for names too: control characters or more than 200 characters make the row invalid.
    cleaned = one_line(name, "name", 200, label=N_("A name")) if name else ""
    return cleaned, subscribers_service.clean_attributes(attributes)


def _language(fields: list[str], layout: csv_files.CsvLayout) -> str | None:
    """The row's `language` cell as a tag (None when empty); ValidationError for one that is no tag."""
    index = layout.language_index
    return languages.normalize(fields[index]) if index is not None and index < len(fields) else None


def _shown(cell: str) -> str:
    """An invalid row's address cell as the report keeps it: a 1 MB cell is not worth keeping."""
    return cell if len(cell) <= SHOWN_CELL else cell[:SHOWN_CELL] + "…"


def _read_batch(rows, layout: csv_files.CsvLayout, seen: set[str], size: int,
                line: Callable[[str, str, dict], str] | None = None) -> _Batch:
    batch = _Batch()
    index = layout.email_index
    for number, fields in rows:
        batch.read += 1
        if not batch.read % YIELD_EVERY:
            time.sleep(0)  # hand the GIL to the database thread now, not after a 5 ms switch interval
        raw = fields[index] if index < len(fields) else ""
        try:
            email = normalize_email(raw)
            duplicate = email in seen
            if not duplicate:
                name, attributes = _parse(fields, layout)
                language = _language(fields, layout)
        except ValidationError as exc:
            batch.invalid.append((number, _shown(raw), exc.text))
        else:
            if duplicate:
                batch.duplicates += 1
            else:
                seen.add(email)
                if language:
                    batch.languages[email] = language
                batch.rows.append((number, email, name, attributes, line(email, name, attributes) if line else None))
        if batch.read >= size:
            break
    return batch


def _prefetch(rows, layout: csv_files.CsvLayout, seen: set[str], size: int, position, line=None):
    """Parse the next batch in a thread while the database applies this one.

    Parsing is Python work and applying is mostly PostgreSQL work (psycopg releases the GIL
    while it waits), so on two cores the two overlap instead of taking turns. `line` also
    makes each row's COPY text here, off the thread that talks to the database.
    """
    ready: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def produce() -> None:
        try:
            while not stop.is_set():
                batch = _read_batch(rows, layout, seen, size, line)
                ready.put((batch, position()))
                if not batch.read:
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            ready.put((exc, 0))

    thread = threading.Thread(target=produce, name="import-reader", daemon=True)
    thread.start()
    try:
        while True:
            batch, at = ready.get()
            if isinstance(batch, BaseException):
                raise batch
            if not batch.read:
                return
            yield batch, at
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                ready.get_nowait()
            except queue.Empty:
                thread.join(0.05)


def _skip_done(job: ImportJob, rows, layout: csv_files.CsvLayout) -> set[str]:
    """On a resumed job, pass over the rows already applied, remembering their addresses."""
    seen: set[str] = set()
    if job.rows:
        _read_batch(rows, layout, seen, job.rows)
    return seen


def _truncate_report(job: ImportJob) -> None:
    """Keep exactly the invalid rows of committed batches (a crash may have written more)."""
    path = invalid_report_path(job)
    kept = []
    if path.exists() and job.invalid:
        with open(path, newline="", encoding="utf-8") as handle:
            kept = list(csv.reader(handle))[1 : job.invalid + 1]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "email", "reason"])
        writer.writerows(kept)


class _Why:
    """The reasons shown for the first rows an import skipped or did not add back to a list."""

    def __init__(self, connection: Any, job: ImportJob, blocked: set[str]) -> None:
        self.room = SHOWN_ERRORS - len(job.skipped)
        self.rows: list[dict[str, Any]] = []
        self.names: dict[int, str | int] = {m.id: m.name for m in lists_service.all_lists()} if job.list_ids else {}
        self.reasons = import_writer.suppression_reasons(connection, sorted(blocked)) if self.room > 0 else {}

    def suppressed(self, number: int, email: str) -> None:
        if len(self.rows) < self.room:
            reason, since = self.reasons.get(email, ("", None))
            self.rows.append(import_reasons.suppressed(number, email, reason, since))

    def left(self, number: int, email: str, lists: list[tuple[int, Any]]) -> None:
        if len(self.rows) < self.room:
            self.rows.append(import_reasons.left(
                number, email, [(self.names.get(list_id, list_id), when) for list_id, when in lists]))


def _set_languages(connection: Any, by_email: dict[str, str], blocked: set[str]) -> None:
    """The `language` column's tags, one UPDATE per language in the batch (a handful), after the
    rows are written; the staging COPY path stays as it is. Suppressed addresses are left alone."""
    emails_by_language: dict[str, list[str]] = {}
    for email, language in by_email.items():
        if email not in blocked:
            emails_by_language.setdefault(language, []).append(email)
    for language, emails in emails_by_language.items():
        connection.execute(update(Subscriber).where(Subscriber.email.in_(emails)).values(language=language))


def _apply(job: ImportJob, batch: _Batch, position: int) -> list[tuple[int, int]]:
    connection = db.session.connection()
    blocked, known = import_writer.lookup(connection, [row[1] for row in batch.rows])
    left = import_writer.left_lists(connection, [known[e][0] for e in known if e not in blocked], job.list_ids)
    why = _Why(connection, job, blocked)
    stage: list[import_writer.StageRow] = []
    invalid = list(batch.invalid)
    updated = unchanged = not_found = 0
    for number, email, name, attributes, line in batch.rows:
        if email in blocked:
            why.suppressed(number, email)
            continue
        if email not in known:
            if job.mode == ImportMode.UPDATE:
                not_found += 1
            else:
                stage.append((email, name, attributes, None, False, line))
            continue
        id_, old_name, old_attributes = known[email]
        if id_ in left:
            why.left(number, email, left[id_])
        new_name = name or old_name
        new_attributes = attributes if job.overwrite_attributes and attributes else {**old_attributes, **attributes}
        if new_attributes is not attributes and new_attributes != old_attributes:
            try:  # each part was within the limits; together they may not be
                subscribers_service.clean_attributes(new_attributes)
            except ValidationError as exc:
                invalid.append((number, email, import_reasons.with_stored(exc.text)))
                continue
        changed = new_name != old_name or new_attributes != old_attributes
        updated += changed
        unchanged += not changed
        stage.append((email, new_name, new_attributes, id_, changed, None))
    new_emails = [row[0] for row in stage if row[3] is None]
    memberships = import_writer.apply(connection, stage, list_ids=job.list_ids,
                                      confirmed=job.mode != ImportMode.OPTIN, now=utcnow())
    _set_languages(connection, batch.languages, blocked)
    # One subscriber.created per new address, set-based and only if an endpoint listens.
    webhooks.emit_created_subscribers(new_emails, "import", job.list_ids)
    invalid.sort(key=lambda entry: entry[0])  # by row: each row is invalid once
    with open(invalid_report_path(job), "a", newline="", encoding="utf-8") as handle:
        # The report opens in a spreadsheet, and its cells are whatever the upload held.
        csv.writer(handle).writerows(csv_files.safe_row([str(n), e, str(r)]) for n, e, r in invalid)
    job.rows += batch.read
    job.created += len(new_emails)
    job.updated += updated
    job.unchanged += unchanged
    job.not_found += not_found
    job.suppressed += len(blocked)
    job.left_lists += len(left)
    job.skipped = job.skipped + why.rows[: max(0, SHOWN_ERRORS - len(job.skipped))]
    job.invalid += len(invalid)
    job.duplicates += batch.duplicates
    job.bytes_done = position
    if len(job.errors) < SHOWN_ERRORS and invalid:
        room = SHOWN_ERRORS - len(job.errors)
        job.errors = job.errors + [import_reasons.row(n, e, r) for n, e, r in invalid[:room]]
    db.session.commit()
    metrics.import_rows({"created": len(new_emails), "updated": updated, "unchanged": unchanged, "not_found": not_found,
                         "suppressed": len(blocked), "invalid": len(invalid), "duplicates": batch.duplicates})
    return memberships if job.mode == ImportMode.OPTIN else []

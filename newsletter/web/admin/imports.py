"""CSV import pages: upload, live progress, the final report and the invalid rows."""
from __future__ import annotations

from flask import Blueprint, abort, jsonify, redirect, render_template, request, send_file, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ...models import ImportJob, Role
from ...services.audience import imports
from ...services.audience import lists as lists_service
from ...services.errors import ValidationError
from ...tasks import enqueue
from ...tasks.imports import run_import
from ..i18n import localized
from ..lookups import parse_id
from ..roles import role_required
from .forms.audience import ImportForm

bp = Blueprint("imports", __name__, url_prefix="/admin/imports")


def _form() -> ImportForm:
    form = ImportForm()
    form.list_ids.choices = [(ml.id, ml.name) for ml in lists_service.all_lists()]
    return form


@bp.get("/")
@role_required(Role.VIEWER)
def index():
    form = _form()
    from_list = parse_id(request.args.get("list_id") or "")
    if from_list in dict(form.list_ids.choices):
        form.list_ids.data = [from_list]  # "Import CSV" on a list's page: that list, ticked
    return render_template("admin/imports/index.html", form=form, jobs=imports.recent())


def _list_missing(form: ImportForm) -> bool:
    """No list ticked although there are lists, and not said on purpose: ask (an import
    without a list adds people no campaign to a list reaches)."""
    if form.list_ids.data or form.no_list.data or form.mode.data == "update" or not form.list_ids.choices:
        return False
    form.list_ids.errors = [_("Tick the lists to add these subscribers to, or tick “Import them without "
                              "adding them to a list” if that is what you want.")]
    return True


@bp.post("/")
@role_required(Role.MARKETER)
def upload():
    form = _form()
    if form.validate_on_submit() and not _list_missing(form):
        try:
            job = imports.start(form.file.data.stream, form.file.data.filename, list_ids=form.list_ids.data,
                                mode=form.mode.data, overwrite_attributes=form.overwrite_attributes.data,
                                created_by_id=current_user.id)
        except ValidationError as exc:
            getattr(form, exc.field, form.file).errors.append(localized(exc))
        else:
            enqueue(run_import, job.id)  # after start() committed the job
            return redirect(url_for("imports.detail", job_id=job.id))
    return render_template("admin/imports/index.html", form=form, jobs=imports.recent()), 400


def _status(job: ImportJob) -> dict:
    return {
        "id": job.id, "status": job.status.value, "progress": round(job.progress, 4),
        "rows": job.rows, "created": job.created, "updated": job.updated, "unchanged": job.unchanged,
        "suppressed": job.suppressed, "invalid": job.invalid, "duplicates": job.duplicates,
        "not_found": job.not_found, "left_lists": job.left_lists, "failure": job.failure,
    }


@bp.get("/<int:job_id>")
@role_required(Role.VIEWER)
def detail(job_id: int):
    job = imports.get(job_id)
    return render_template("admin/imports/detail.html", job=job, status=_status(job), reason=_reason,
                           list_names={ml.id: ml.name for ml in lists_service.all_lists()})


def _reason(entry: dict) -> str:
    """Why a report row was skipped or invalid, in the page's language with its dates in the page's
    locale (the job also keeps the English sentence, which the API and the CSV report show)."""
    return imports.row_reason(entry, _, format_date)


@bp.get("/<int:job_id>.json")
@role_required(Role.VIEWER)
def status(job_id: int):
    return jsonify(_status(imports.get(job_id)))


@bp.get("/<int:job_id>/invalid.csv")
@role_required(Role.MARKETER)
def invalid_rows(job_id: int):
    path = imports.invalid_report_path(imports.get(job_id))
    if not path.exists():
        abort(404, description=_l("This import has no report of invalid rows."))
    return send_file(path, mimetype="text/csv", as_attachment=True, download_name=f"import-{job_id}-invalid.csv")

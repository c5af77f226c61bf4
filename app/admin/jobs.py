"""The admin API of write jobs (`/admin/jobs`): the connector's own changes to Procore.

The admin bearer (ADMIN_TOKEN) or a jobs token (JOBS_TOKEN, which reaches these routes and no
other), audited as the rest of `/admin`; bodies are bounded before they are read (413), and a
job that cannot be sent is refused with 422 naming the field in `loc`, nothing queued. Thin
edge: parse, authorise, call `app.admin.service`, commit.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app import bearer, cursor
from app.admin import service
from app.admin.router import (
    Limit,
    PathId,
    QueryId,
    ResourceFilter,
    RuntimeDep,
    Session,
    cursor_param,
)
from app.admin.schemas import Problem
from app.logs import get_logger
from app.models import JobStatus
from app.settings import Settings
from app.writes import policy
from app.writes import service as writes
from app.writes.views import (
    JobAccepted,
    JobBulkAccepted,
    JobBulkIn,
    JobDetail,
    JobEventPage,
    JobIn,
    JobPage,
    JobReplayIn,
    JobResolveIn,
)

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or wrong bearer token"},
}
_SUBMIT_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "The idempotency key was used with another request"},
    413: {
        "model": Problem,
        "description": "Body larger than its cap: API_MAX_BODY_BYTES, or what the payloads "
        "need (WRITE_PAYLOAD_MAX_BYTES); WRITE_BULK_MAX_BODY_BYTES for a bulk",
    },
}
_ACTION_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem},
    409: {"model": Problem, "description": "The job is not in a state this action applies to"},
}

log = get_logger(__name__)

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="JobsToken",
    description="One of the ADMIN_TOKEN values, or of the JOBS_TOKEN values (which reach "
    "/admin/jobs only)",
)


async def jobs_actor(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The caller as the audit names it: `admin:<fingerprint>` for an admin token,
    `jobs:<fingerprint>` for a jobs token; 401 otherwise."""
    settings = runtime.settings
    token = None if credentials is None else credentials.credentials
    for scope, accepted in (("admin", settings.admin_token), ("jobs", settings.jobs_token)):
        matched = bearer.matching(token, accepted)
        if matched is not None:
            return f"{scope}:{bearer.fingerprint(matched)}"
    log.warning("admin.unauthorized", path=request.url.path, presented=token is not None)
    raise HTTPException(
        401, "missing or invalid admin bearer token", headers={"WWW-Authenticate": "Bearer"}
    )


Actor = Annotated[str, Depends(jobs_actor)]

router = APIRouter(
    prefix="/admin/jobs",
    tags=["write jobs"],
    dependencies=[Depends(jobs_actor)],
    responses=_ERRORS,
)


def _refused(exc: policy.Refused, *prefix: str | int) -> RequestValidationError:
    """A job that cannot be sent, as FastAPI states invalid input: `loc` names the field."""
    loc = ("body", *prefix, *exc.field.split("."))
    return RequestValidationError(
        [{"type": "value_error", "loc": loc, "msg": exc.message, "input": None}]
    )


def _checked(job: JobIn, settings_max: int) -> policy.Submission:
    return policy.check(
        company_id=job.company_id,
        project_id=job.project_id,
        resource_name=job.resource_name,
        operation=job.operation,
        resource_id=job.resource_id,
        origin_id=job.origin_id,
        payload=job.payload,
        idempotency_key=job.idempotency_key,
        payload_max_bytes=settings_max,
    )


@router.post(
    "",
    status_code=202,
    summary="Queue a write to Procore: a registered resource, an operation, a payload",
    responses=_SUBMIT_ERRORS,
)
async def submit_job(
    runtime: RuntimeDep, session: Session, actor: Actor, body: JobIn
) -> JobAccepted:
    try:
        submission = _checked(body, runtime.settings.write_payload_max_bytes)
    except policy.Refused as exc:
        raise _refused(exc) from exc
    async with session.begin():
        try:
            [accepted] = await service.submit_jobs(session, [submission], actor=actor)
        except writes.KeyReused as exc:
            raise HTTPException(409, str(exc)) from exc
    return accepted


@router.post(
    "/bulk",
    status_code=202,
    summary="Queue many writes at once (all or nothing), in the order given",
    responses=_SUBMIT_ERRORS,
)
async def submit_jobs(
    runtime: RuntimeDep, session: Session, actor: Actor, body: JobBulkIn
) -> JobBulkAccepted:
    submissions: list[policy.Submission] = []
    for index, job in enumerate(body.jobs):
        try:
            submissions.append(_checked(job, runtime.settings.write_payload_max_bytes))
        except policy.Refused as exc:
            raise _refused(exc, "jobs", index) from exc
    async with session.begin():
        try:
            accepted = await service.submit_jobs(session, submissions, actor=actor)
        except writes.KeyReused as exc:
            raise HTTPException(409, f"jobs[{exc.index}]: {exc}") from exc
    return JobBulkAccepted(jobs=accepted)


@router.get("", summary="Write jobs by status, company and resource, newest first")
async def list_jobs(
    session: Session,
    status: Annotated[list[JobStatus] | None, Query(description="Repeatable")] = None,
    company_id: QueryId = None,
    resource_name: ResourceFilter = None,
    cursor_: Annotated[str | None, cursor_param(service.JOBS_CURSOR)] = None,
    limit: Limit = 100,
) -> JobPage:
    where = writes.JobFilter(
        status=status or (), company_id=company_id, resource_name=resource_name
    )
    try:
        return await service.list_jobs(session, where, after=cursor_, limit=limit)
    except cursor.InvalidCursor as exc:
        raise HTTPException(400, f"cursor: {exc}") from exc


@router.get(
    "/events",
    summary="The jobs' outcomes (job.succeeded, job.failed, job.parked, job.cancelled) after "
    "a cursor, in order",
)
async def job_events(
    runtime: RuntimeDep,
    after: Annotated[
        str | None,
        cursor_param(
            service.JOB_EVENTS_CURSOR, "after", "`next_cursor` of the last call; omit to start over"
        ),
    ] = None,
    company_id: QueryId = None,
    limit: Limit = 100,
) -> JobEventPage:
    try:
        return await service.job_events(
            runtime.sessions, after=after, limit=limit, company_id=company_id
        )
    except cursor.InvalidCursor as exc:
        raise HTTPException(400, f"after: {exc}") from exc


@router.get(
    "/{job_id:int}",
    summary="One job: status, attempts, Procore's answer, the resulting resource id",
    responses={404: {"model": Problem}},
)
async def get_job(session: Session, job_id: PathId) -> JobDetail:
    job = await service.get_job(session, job_id)
    if job is None:
        raise HTTPException(404, f"job {job_id} not found")
    return job


async def _act(
    session: Session,
    actor: str,
    job_id: int,
    action: service.JobAction,
    **options: Any,
) -> JobDetail:
    async with session.begin():
        try:
            job = await service.act_on_job(session, job_id, action, actor=actor, **options)
        except writes.ActionRefused as exc:
            raise HTTPException(409, exc.message) from exc
        if job is None:
            raise HTTPException(404, f"job {job_id} not found")
    return job


@router.post(
    "/{job_id:int}/cancel",
    summary="Cancel a job not yet done (queued, retrying, parked or in_doubt)",
    responses=_ACTION_ERRORS,
)
async def cancel_job(session: Session, actor: Actor, job_id: PathId) -> JobDetail:
    return await _act(session, actor, job_id, service.JobAction.CANCEL)


@router.post(
    "/{job_id:int}/replay",
    summary="Send a failed or cancelled job again (attempts reset, its place in order kept)",
    responses=_ACTION_ERRORS,
)
async def replay_job(
    session: Session, actor: Actor, job_id: PathId, body: JobReplayIn | None = None
) -> JobDetail:
    force = body.force if body is not None else False
    return await _act(session, actor, job_id, service.JobAction.REPLAY, force=force)


@router.post(
    "/{job_id:int}/resolve",
    summary="Settle an in_doubt create: Procore made this resource, or made none (send again)",
    responses=_ACTION_ERRORS,
)
async def resolve_job(
    session: Session, actor: Actor, job_id: PathId, body: JobResolveIn
) -> JobDetail:
    return await _act(
        session, actor, job_id, service.JobAction.RESOLVE, resource_id=body.resource_id
    )


def body_caps(settings: Settings) -> dict[str, int]:
    """The body caps of the submission routes (bounded before anything reads them, as every
    route's is, app.bodies): a job carries a payload of up to WRITE_PAYLOAD_MAX_BYTES, a bulk
    up to a thousand of them."""
    one = max(settings.api_max_body_bytes, settings.write_payload_max_bytes + _ENVELOPE_BYTES)
    return {router.prefix: one, f"{router.prefix}/bulk": settings.write_bulk_max_body_bytes}


# What a job's body holds besides its payload (the keys, the ids), with room to spare.
_ENVELOPE_BYTES = 4 * 1024

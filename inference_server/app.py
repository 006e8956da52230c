"""The FastAPI app: :func:`create_app` wires settings, storage, the model and routes.

Start here to follow a scan to an alert:

1. :func:`lifespan` builds the long-lived services once: the database (migrated
   to the newest schema), the image store, the :class:`~.modelhost.ModelHost`
   with the X-ray detector loaded and warmed up, the alert service and the
   :class:`~.scans.ScanService`, which re-infers scans a crash left pending;
2. ``POST /v1/scans`` (:mod:`.api_scans`) hands the upload to
   :meth:`.scans.ScanService.submit`: validate, store, infer through the
   batcher, record detections and raise the alert in one commit;
3. the alert service (:mod:`.alerts`) pushes the alert to handhelds subscribed
   through :mod:`.api_alerts` (SSE and WebSocket).

CCTV frames take a parallel path into the same outbox: ``POST
/v1/cameras/{id}/frames`` (:mod:`.api_cctv`) hands the frame to
:meth:`.cctv.CctvService.process_frame`, whose camera pipeline tracks and embeds
people; a watch-list match becomes a sighting and a ``reid`` alert in one commit
(:func:`.cctv.record_sighting`), delivered like any other alert. Without the
re-ID models (:func:`start_cctv`) only the CCTV routes answer 503.

Errors of the services become JSON ``{"detail": ..., "request_id": ...}`` answers
here (:func:`add_error_handlers`): bad input is always a 4xx naming the field or
problem, never a 500. Every HTTP request has an id (:class:`ObserveRequests`),
echoed in the ``X-Request-ID`` header and written on each of its log lines.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.utils import is_body_allowed_for_status_code
from sqlalchemy import func, select
from starlette.exceptions import HTTPException as StarletteHTTPException

from cv.errors import CustomsVisionError, NotFoundError
from cv.inference_server import (
    alerts,
    api_admin,
    api_alerts,
    api_cctv,
    api_health,
    api_risk,
    api_scans,
    cctv,
    metrics,
    pages,
    risk,
)
from cv.inference_server.auth import BOOTSTRAP_ROLES, create_token
from cv.inference_server.batcher import DeadlineExceeded, QueueFull
from cv.inference_server.db import Token, make_engine, migrate, session_factory
from cv.inference_server.deps import Services
from cv.inference_server.logs import (
    REQUEST_ID_HEADER,
    error_body,
    log_request,
    redact_uvicorn_logs,
    request_context,
    request_id_from,
)
from cv.inference_server.modelhost import ModelHost, ModelNotReady
from cv.inference_server.scans import (
    DuplicateScan,
    InferenceFailed,
    ScanDeadline,
    ScanNotFound,
    ScanService,
)
from cv.inference_server.settings import ServerSettings
from cv.inference_server.storage import ImageStore
from cv.inference_server.uploads import FORM_OVERHEAD_BYTES, BodyLimit

log = logging.getLogger(__name__)


def create_app(settings: ServerSettings | None = None) -> FastAPI:
    """The inference server app.

    Args:
        settings: Server settings; by default read from ``CV_SERVER_*`` variables.
    """
    settings = settings or ServerSettings()
    redact_uvicorn_logs()  # WebSocket handshakes are logged with their ?token=
    app = FastAPI(
        title="customs-vision inference server",
        summary="X-ray scans in, detections and push alerts to inspectors out.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    add_error_handlers(app)
    include_routers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes + FORM_OVERHEAD_BYTES)
    app.add_middleware(ObserveRequests)  # outermost: sees every answer, 413s included
    return app


def include_routers(app: FastAPI) -> None:
    """Every route of the server, in one place."""
    app.include_router(api_health.router)
    app.include_router(api_scans.router)
    app.include_router(api_alerts.router)
    app.include_router(api_admin.router)
    app.include_router(api_risk.router)
    app.include_router(api_cctv.router)
    # The pages (handheld page, reader console), after the APIs.
    app.include_router(pages.router)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Builds the services at start-up and stops them, in reverse order, at shutdown."""
    settings: ServerSettings = app.state.settings
    # Blocking work (decoding, storage, database, alert replays) runs in this pool. The
    # default (cores + 4 threads) lets a burst of reconnecting handhelds replaying their
    # alerts hold up uploads; a larger pool keeps both moving.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=32, thread_name_prefix="cv-server")
    )
    engine = make_engine(settings.database_url)
    await asyncio.to_thread(migrate, engine)
    sessions = session_factory(engine)
    services = Services(
        settings=settings, engine=engine, sessions=sessions, data_dir=Path(settings.data_dir)
    )
    services.extra["images"] = ImageStore(settings.data_dir)
    if settings.bootstrap_tokens:
        services.extra["bootstrap_tokens"] = await asyncio.to_thread(bootstrap_tokens, sessions)

    models = ModelHost(
        runtime=settings.runtime,
        precision=settings.precision,
        max_batch=settings.max_batch,
        max_wait_ms=settings.max_wait_ms,
        queue_size=settings.queue_size,
        instances=settings.model_instances,
        threads=settings.inference_threads,
    )
    services.extra["models"] = models
    await load_initial_model(models, settings.model_dir)

    # The declaration risk engine: its history in the same database, the last activated pack.
    risk_service = await asyncio.to_thread(
        functools.partial(
            risk.RiskService.open,
            settings.database_url,
            **({"pack_path": settings.risk_pack} if settings.risk_pack else {}),
        )
    )
    services.extra["risk"] = risk_service

    alert_service = alerts.AlertService(settings=settings, sessions=sessions)
    services.extra["alerts"] = alert_service
    scan_service = ScanService(
        sessions=sessions,
        store=services.extra["images"],
        models=models,
        alert_service=alert_service,
        request_timeout_s=settings.request_timeout_s,
        max_upload_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_pixels,
        inference_retries=settings.inference_retries,
        ack_deadline_s=settings.alert_ack_deadline_s,
        risk=risk_service,
    )
    services.extra["scans"] = scan_service
    # CCTV re-identification: its own models, image folder and upkeep; without its
    # models its routes answer 503 and nothing else changes.
    cctv_service = await start_cctv(settings, sessions, alert_service)
    services.extra["cctv"] = cctv_service
    app.state.services = services
    await alert_service.start()
    await scan_service.start()  # its first round re-infers scans a crash left pending
    await cctv_service.start()
    demo_feed = None
    if settings.demo_feed:
        # Synthetic scans posted over HTTP to this very server (`serve run --demo`),
        # and the synthetic CCTV cameras when the re-ID models are there.
        from cv.inference_server.demo import start_demo_feed

        demo_feed = await start_demo_feed(app, services)
    try:
        yield
    finally:
        if demo_feed is not None:
            await demo_feed.stop()
        await cctv_service.stop()
        await scan_service.stop()
        await models.stop()
        await alert_service.stop()
        risk_service.close()
        engine.dispose()


async def load_initial_model(models: ModelHost, model_dir: Path | None) -> None:
    """Loads the configured (or shipped default) model; a failure leaves the server unready.

    The server still starts without a model, so that operators can read stored
    scans and swap a good model in (``POST /v1/admin/models/xray``); readiness
    says why it is not ready.
    """
    from cv.models.load import default_model_dir

    where = model_dir or default_model_dir()
    try:
        await models.load(where)
    except CustomsVisionError as exc:
        models.last_error = str(exc)
        log.error("no model loaded: %s", exc)


async def start_cctv(
    settings: ServerSettings, sessions: Any, alert_service: alerts.AlertService
) -> cctv.CctvService:
    """Loads the re-ID embedder and person detector when present; builds the CCTV service.

    A missing or broken model leaves the service unready with the reason (the
    CCTV routes answer 503 with it; ``/v1/cctv/ready`` reports it).
    """
    from cv.models.cctv import default_detector_dir, default_embedder_dir

    models, why = None, None
    try:
        models = await asyncio.to_thread(
            cctv.load_cctv_models,
            Path(settings.reid_model_dir or default_embedder_dir()),
            Path(settings.person_model_dir or default_detector_dir()),
            runtime=settings.reid_runtime,
            precision=settings.reid_precision,
            threshold=settings.reid_match_threshold,
        )
    except CustomsVisionError as exc:
        why = str(exc)
        log.warning("CCTV re-identification is off: %s", why)
    except Exception as exc:  # a runtime or import failure must not stop the X-ray server
        why = f"loading the re-ID models failed ({type(exc).__name__}: {exc})"
        log.exception("CCTV re-identification is off")
    return cctv.CctvService(
        sessions=sessions,
        store=ImageStore(Path(settings.data_dir) / "cctv"),
        alert_service=alert_service,
        models=models,
        not_ready=why,
        ack_deadline_s=settings.alert_ack_deadline_s,
        retention_days=settings.reid_retention_days,
        maintenance_s=settings.reid_maintenance_s,
        watchlist_max_days=settings.watchlist_max_days,
        enrol_person_conf=settings.enrol_person_conf,
        max_upload_bytes=settings.max_upload_bytes,
        max_pixels=settings.max_pixels,
        workers=settings.cctv_workers,
        pipeline_kwargs=settings.reid_pipeline,
        redact_bystanders=settings.cctv_redact_bystanders,
        restore_sources=settings.cctv_restore_sources,
    )


def bootstrap_tokens(sessions: Any) -> dict[str, str]:
    """Creates one token per role when there are none yet, and prints their secrets once.

    Returns:
        Role -> secret of the tokens created (empty when tokens existed).
    """
    with sessions() as session:
        if session.scalar(select(func.count()).select_from(Token)):
            return {}
        secrets = {
            role: create_token(session, name=f"bootstrap-{role}", role=role)
            for role in BOOTSTRAP_ROLES
        }
    lines = "\n".join(f"  {role:<9} {secret}" for role, secret in secrets.items())
    # Printed, not logged: the secrets must not end up in log storage.
    print(f"bootstrap API tokens (shown once):\n{lines}", flush=True)
    log.info("created bootstrap tokens for roles %s", ", ".join(secrets))
    return secrets


# -- errors -> HTTP ------------------------------------------------------------------


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _json(request: Request, code: int, detail: Any, **extra: Any) -> JSONResponse:
    """An error answer: ``detail``, the request's id, and ``extra`` fields."""
    headers = extra.pop("headers", None)
    body = error_body(detail, _request_id(request), **extra)
    return JSONResponse(body, status_code=code, headers=headers)


def _field_of(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc[1:]] if len(loc) > 1 else [str(p) for p in loc]
    return ".".join(parts) or "body"


def add_error_handlers(app: FastAPI) -> None:
    """Maps the services' errors to JSON answers; only real faults become 500."""

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if not is_body_allowed_for_status_code(exc.status_code):
            return Response(status_code=exc.status_code, headers=exc.headers)
        return _json(request, exc.status_code, exc.detail, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field_of(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return _json(request, 422, detail, errors=errors)

    @app.exception_handler(QueueFull)
    async def _queue_full(request: Request, exc: QueueFull) -> JSONResponse:
        return _json(request, 429, str(exc), headers={"Retry-After": str(exc.retry_after_s)})

    @app.exception_handler(ScanDeadline)
    async def _deadline(request: Request, exc: ScanDeadline) -> JSONResponse:
        return _json(request, 504, str(exc), scan_id=exc.scan_id)

    @app.exception_handler(DeadlineExceeded)
    async def _deadline_bare(request: Request, exc: DeadlineExceeded) -> JSONResponse:
        return _json(request, 504, str(exc))

    @app.exception_handler(InferenceFailed)
    async def _failed(request: Request, exc: InferenceFailed) -> JSONResponse:
        return _json(request, 503, str(exc), scan_id=exc.scan_id)

    @app.exception_handler(ModelNotReady)
    async def _not_ready(request: Request, exc: ModelNotReady) -> JSONResponse:
        return _json(request, 503, str(exc), headers={"Retry-After": "5"})

    @app.exception_handler(api_health.NotReady)
    async def _unready(request: Request, exc: api_health.NotReady) -> JSONResponse:
        return _json(request, 503, str(exc), ready=False)

    @app.exception_handler(DuplicateScan)
    async def _duplicate(request: Request, exc: DuplicateScan) -> JSONResponse:
        return _json(request, 409, f"scan_id: {exc}")

    @app.exception_handler(ScanNotFound)
    async def _no_scan(request: Request, exc: ScanNotFound) -> JSONResponse:
        return _json(request, 404, str(exc))

    @app.exception_handler(cctv.CctvNotReady)
    async def _cctv_not_ready(request: Request, exc: cctv.CctvNotReady) -> JSONResponse:
        return _json(request, 503, str(exc), headers={"Retry-After": "30"})

    @app.exception_handler(cctv.CameraRefused)
    async def _camera_refused(request: Request, exc: cctv.CameraRefused) -> JSONResponse:
        return _json(request, 403, str(exc))

    @app.exception_handler(cctv.EntryEnded)
    async def _entry_ended(request: Request, exc: cctv.EntryEnded) -> JSONResponse:
        return _json(request, 409, str(exc), field=exc.field)

    @app.exception_handler(alerts.AlertStateError)
    async def _alert_state(request: Request, exc: alerts.AlertStateError) -> JSONResponse:
        return _json(request, 409, str(exc))

    @app.exception_handler(CustomsVisionError)
    async def _ours(request: Request, exc: CustomsVisionError) -> JSONResponse:
        code = 404 if isinstance(exc, NotFoundError) else 422
        return _json(request, code, str(exc), field=exc.field)

    @app.exception_handler(Exception)
    async def _fault(request: Request, exc: Exception) -> JSONResponse:
        # Starlette calls this outside the middleware (ObserveRequests has finished), so
        # the request id comes from the request's state, and the header is set here.
        request_id = _request_id(request)
        log.exception(
            "unhandled error on %s %s",
            request.method,
            request.url.path,
            extra={"request_id": request_id},
        )
        return _json(
            request,
            500,
            f"internal error ({type(exc).__name__}); see the server log, request id {request_id}",
            headers={REQUEST_ID_HEADER: request_id} if request_id else None,
        )


# -- request log and metrics -----------------------------------------------------------


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class ObserveRequests:
    """ASGI middleware: the request id, one access-log line and the request metrics
    per HTTP request.

    The request id is the client's ``X-Request-ID`` when short and plain, else a
    new one (:func:`~.logs.request_id_from`); the request is handled in its
    :func:`~.logs.request_context` (every log line of the request carries it), the
    id is kept on ``request.state.request_id`` (error bodies) and sent back as
    ``X-Request-ID``.

    Pure ASGI rather than ``BaseHTTPMiddleware``, which buffers and would break
    the event streams. Routes put ``scan_id`` and ``token`` on ``request.state``
    for the log line.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        status = 500
        request_id = request_id_from(_header(scope, b"x-request-id"))
        state["request_id"] = request_id
        echoed = (b"x-request-id", request_id.encode())

        async def observe_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                if not any(key.lower() == b"x-request-id" for key, _ in headers):
                    message = {**message, "headers": [*headers, echoed]}
            await send(message)

        with request_context(request_id):
            try:
                await self.app(scope, receive, observe_send)
            finally:
                seconds = time.perf_counter() - started
                route = getattr(scope.get("route"), "path", "unmatched")
                method = scope["method"]
                metrics.REQUESTS.labels(route, method, str(status)).inc()
                metrics.REQUEST_DURATION.labels(route, method).observe(seconds)
                log_request(
                    method=method,
                    path=scope["path"],
                    status=status,
                    ms=seconds * 1000,
                    scan_id=state.get("scan_id"),
                    token=state.get("token"),
                )

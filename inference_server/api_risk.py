"""Declaration risk routes: decide declarations, the active rule pack, outcomes, the report.

::

    POST /v1/risk/declarations          reader+: one declaration (JSON) -> its decision
    GET  /v1/risk/declarations/{id}     reader+: the stored decision (X-ray reasons
                                        included) and the scans linked to it
    POST /v1/risk/declarations/batch    reader+: multipart ``file`` (CSV, Parquet, JSON
                                        lines) -> summary, decisions, errors by row
    GET  /v1/risk/pack                  reader+: label, version, sha256, lanes, rules
    GET  /v1/risk/pack.yaml             admin: the active pack's YAML, to edit and PUT
    PUT  /v1/risk/pack                  admin: a pack's YAML as the body; validated,
                                        then swapped in (a bad pack, or one whose
                                        dates exclude today: 422, the old serves;
                                        ``?future=true`` stages a pack not in force yet)
    POST /v1/risk/outcomes              inspector or admin: what an inspection found
    GET  /v1/risk/report                reader+: per-rule hits, finds, hit rates

"reader+" is a reader, inspector or admin token. Scanner tokens (X-ray machines)
may not post declarations on purpose: a machine that could declare goods could
also declare away what it detects. The routes translate HTTP to
:class:`~cv.inference_server.risk.RiskService` calls; bad input is a 422 naming
the field (and the row of a batch, the line and column of a pack).
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, HTTPException, Query, Request, UploadFile, status
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from cv.errors import CustomsVisionError, NotFoundError
from cv.inference_server import risk
from cv.inference_server.deps import Admin, Inspector, Reader, ServicesDep, SessionDep
from cv.models.risk import DeclarationError, RulePackError

router = APIRouter(prefix="/v1/risk", tags=["risk"])


class OutcomeIn(BaseModel):
    """What the inspection of a declaration found."""

    decision_id: str = Field(min_length=1, max_length=64, description="The declaration's id.")
    found: bool = Field(description="Whether anything irregular was found.")
    what: str | None = Field(default=None, max_length=500, description="What was found.")


def _declaration_error(exc: DeclarationError) -> JSONResponse:
    return JSONResponse(
        {
            "detail": str(exc),
            "field": exc.field,
            "problems": risk.problem_dicts(exc.problems),
        },
        status_code=422,
    )


def _pack_error(exc: RulePackError, pack_path: Path) -> JSONResponse:
    # Name the file as the admin knows it: the body, or a reference file of the pack's folder.
    file = "body"
    if exc.path is not None and Path(exc.path) != pack_path:
        path, folder = Path(exc.path), pack_path.parent
        file = str(path.relative_to(folder)) if path.is_relative_to(folder) else path.name
    where = ":".join(str(v) for v in (file, exc.line, exc.column) if v is not None)
    field = f" {exc.field}:" if exc.field else ""
    return JSONResponse(
        {
            "detail": f"{where}:{field} {exc.reason}",
            "file": file,
            "line": exc.line,
            "column": exc.column,
            "field": exc.field,
            "message": exc.reason,
        },
        status_code=422,
    )


@router.post("/declarations", status_code=status.HTTP_201_CREATED, response_model=None)
def post_declaration(
    services: ServicesDep,
    principal: Reader,
    record: Annotated[dict[str, Any], Body(description="The declaration's fields.")],
) -> dict[str, Any] | JSONResponse:
    """Decides one declaration: lane, score, fired rules with reasons, random flag.

    The declaration and its decision are stored: later declarations'
    aggregations count it, scans link to it and outcomes are recorded against it.
    Errors: 422 with ``problems`` (field, value, message) for a bad declaration.
    """
    try:
        decision = services.risk.decide(record)
    except DeclarationError as exc:
        return _declaration_error(exc)
    return decision.to_dict()


@router.post("/declarations/batch", response_model=None)
async def post_batch(
    services: ServicesDep,
    principal: Reader,
    file: Annotated[UploadFile, File(description="Declarations: .csv, .parquet, .jsonl")],
) -> dict[str, Any] | JSONResponse:
    """Decides every valid row of a file; reports every bad one by row and field.

    The same lanes and reasons as ``customs-vision risk score --no-quotas`` on
    the same file and history: the aggregations (anti-splitting, repeat buyers)
    count the whole file and the stored declarations before any row is decided.

    The answer has ``summary`` (counts per lane, rows rejected), ``decisions``
    (each with its ``row``) and ``errors`` (``row``, ``id``, ``field``, ``value``,
    ``message``; row 0 is about the whole file, such as an unknown column).
    Errors: 422 for an unknown file type or an unreadable file, 413 beyond
    :data:`~cv.inference_server.risk.MAX_BATCH_ROWS` rows, 503 when the database
    refused to store the file's declarations and decisions (none of them is stored).
    """
    from cv.models.risk.batch import FORMATS

    name = Path(file.filename or "upload").name
    suffix = Path(name).suffix.lower()
    if suffix not in FORMATS:
        raise HTTPException(
            422, detail=f"file: unknown file type {suffix!r}: use {', '.join(FORMATS)}"
        )
    data = await file.read()
    with tempfile.TemporaryDirectory(prefix="cv-risk-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            outcome = await asyncio.to_thread(services.risk.decide_batch, path)
        except risk.TooManyRows as exc:
            raise HTTPException(413, detail=str(exc)) from None
        except risk.BatchNotStored as exc:
            raise HTTPException(503, detail=str(exc)) from None
        except CustomsVisionError as exc:
            line = f":{exc.line}" if exc.line else ""
            raise HTTPException(422, detail=f"file {name}{line}: {exc.reason}") from None
    return {
        "summary": outcome.summary(),
        "decisions": [{"row": row, **d.to_dict()} for row, d in outcome.decisions],
        "errors": risk.problem_dicts(outcome.problems),
    }


@router.get("/declarations/{declaration_id}", response_model=None)
def get_declaration(
    declaration_id: str, services: ServicesDep, session: SessionDep, principal: Reader
) -> dict[str, Any]:
    """The stored decision (with the reasons X-ray scans added) and the scans linked to it."""
    decision = services.risk.decision(declaration_id)
    if decision is None:
        raise NotFoundError(f"no decision for declaration {declaration_id!r}", field="id")
    return {**decision.to_dict(), "scans": risk.linked_scans(session, declaration_id)}


@router.get("/pack", response_model=None)
def get_pack(services: ServicesDep, principal: Reader) -> dict[str, Any]:
    """The active pack: label, version, sha256, lanes, rules with their reasons."""
    pack = services.risk.pack
    lanes = pack.lanes
    return {
        "label": pack.label,
        "id": pack.id,
        "version": pack.version,
        "description": pack.description,
        "sha256": pack.sha256,
        "valid_from": None if pack.valid_from is None else pack.valid_from.isoformat(),
        "valid_to": None if pack.valid_to is None else pack.valid_to.isoformat(),
        "lanes": {
            "thresholds": lanes.thresholds,
            "expected_rates": lanes.expected_rates,
            "random_rate": lanes.random_rate,
            "random_lane": lanes.random_lane,
        },
        "lists": {name: len(values) for name, values in pack.lists.items()},
        "rules": [
            {
                "id": rule.id,
                "reason": rule.reason,
                "when": rule.when,
                "lane": rule.lane,
                "score": rule.score,
                "select_rate": rule.select_rate,
                "max_hits_without_selection": rule.max_hits,
            }
            for rule in pack.rules
        ],
        "activations": services.risk.pack_log.history(),
    }


@router.get("/pack.yaml", response_class=PlainTextResponse)
def get_pack_yaml(services: ServicesDep, principal: Admin) -> PlainTextResponse:
    """The active pack's YAML as activated: edit it and ``PUT /v1/risk/pack``."""
    return PlainTextResponse(services.risk.pack_text, media_type="application/yaml")


@router.put("/pack", response_model=None)
async def put_pack(
    request: Request,
    services: ServicesDep,
    principal: Admin,
    future: Annotated[
        bool,
        Query(
            description="The pack is meant for a later date: accept it before its valid_from "
            "(declarations arriving before that date are then refused). An expired pack is "
            "refused all the same."
        ),
    ] = False,
) -> dict[str, Any] | JSONResponse:
    """Validates the pack in the body (YAML) and makes it active.

    Its reference files (``lists``, ``tables``, ``rates``) are read from the
    active pack's folder. A pack whose ``valid_from`` / ``valid_to`` exclude
    today is refused (422, ``field`` ``valid_from`` or ``valid_to``, the message
    naming the dates) unless ``future=true`` and it only starts later.
    Errors: 422 naming ``file``, ``line``, ``column`` and ``field``; the pack
    that was active keeps serving.
    """
    try:
        text = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(422, detail=f"body: not UTF-8 text ({exc.reason})") from None
    pack_path = services.risk.pack.path
    try:
        pack = await asyncio.to_thread(
            services.risk.put_pack, text, actor=principal.name, future=future
        )
    except RulePackError as exc:
        return _pack_error(exc, pack_path)
    return {
        "label": pack.label,
        "sha256": pack.sha256,
        "rules": len(pack.rules),
        "valid_from": None if pack.valid_from is None else pack.valid_from.isoformat(),
        "valid_to": None if pack.valid_to is None else pack.valid_to.isoformat(),
        "in_force": pack.is_valid_on(date.today()),
    }


@router.post("/outcomes", status_code=status.HTTP_201_CREATED, response_model=None)
def post_outcome(body: OutcomeIn, services: ServicesDep, principal: Inspector) -> dict[str, Any]:
    """Records what the inspection of a declaration found (404 for an unknown decision)."""
    outcome = services.risk.record_outcome(body.decision_id, found=body.found, what=body.what)
    return {"decision_id": outcome.decision_id, "found": outcome.found, "what": outcome.what}


@router.get("/report", response_model=None)
def get_report(services: ServicesDep, principal: Reader) -> dict[str, Any]:
    """Per rule: hits, selections, inspections, finds, hit rate; the random sample's compliance."""
    return services.risk.report()

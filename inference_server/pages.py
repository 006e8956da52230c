"""The web pages: the inspectors' handheld, the readers' console, the watch-list admin page.

::

    GET    /handheld          the handheld page (inspector or admin token)
    GET    /console           the reader console (reader, inspector or admin token)
    GET    /watchlist         the watch-list admin page (admin token)
    GET    /static/{name}     the pages' scripts and style sheet (no build step)
    POST   /v1/session        {"token": "cvt_..."}: sign in; sets the ``cv_token`` cookie
    GET    /v1/session        who is signed in (401 when nobody is)
    DELETE /v1/session        sign out: clears the cookie

The pages are plain HTML, CSS and JavaScript from ``static/``, served by the app
itself: no CDN, no bundler. They talk to the same API as every other client.
Signing in stores the token in an ``HttpOnly``, ``SameSite=Strict`` cookie, which
:mod:`cv.inference_server.deps` reads when a request has no ``Authorization``
header: the browser then sends it with ``EventSource`` streams and ``<img>``
requests, which cannot carry headers, and page scripts never see the secret.

How the pages use the API:

* the handheld lists the open alerts (``GET /v1/alerts?state=open,acknowledged``),
  then follows ``GET /v1/alerts/stream`` with the last ``seq`` it saw (kept in
  ``localStorage``), draws a tapped alert's boxes over its ``image_url`` (the
  scan, or for a re-ID alert the CCTV frame, with the watch-list entry's
  enrolment photo beside the camera's crop) and posts ``ack`` / ``confirm`` /
  ``reject`` (for a re-ID candidate: "same person" / "not the same person");
* the console polls ``GET /v1/scans?site=&lane=`` every second and shows each
  scan's ``overlay.png`` with its detections. Polling, not a stream: the scans
  table is already the single source of truth that every server process writes,
  so one indexed query a second per console needs no fan-out between processes
  and no change to the scan path, and a reader sees a scan within about a second.
  For a token that may read sightings (inspector, admin) it also lists the recent
  re-ID sightings (``GET /v1/sightings?site=``) and follows ``GET
  /v1/sightings/stream`` for new ones and their verdicts; a reader never sees it;
* the watch-list page (admin) shows the cameras (``GET /v1/cameras``, each one's
  ``/source``), the entries (``GET /v1/watchlist/entries?state=``) with their
  enrolment crops, the recent sightings and the newest audit lines (``GET
  /v1/audit?order=desc``); it enrols through ``POST /v1/watchlist/entries``
  (multipart, the API's errors shown by the field they name) and revokes with a
  reason (``POST /v1/watchlist/entries/{id}/revoke``). It refreshes every few
  seconds; nothing is decided by the page itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from cv.inference_server.auth import PERMISSIONS, Principal, TokenRefused, identify
from cv.inference_server.deps import ServicesDep, get_principal

router = APIRouter(tags=["pages"])

STATIC_DIR = Path(__file__).parent / "static"
"""Where the pages' files live (package data ``static/*``)."""

COOKIE = "cv_token"
"""The cookie :mod:`cv.inference_server.deps` reads the API token from."""
COOKIE_MAX_AGE_S = 12 * 3600
"""A signed-in page stays signed in for one shift, across reloads and restarts."""

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
_STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(?:html|js|css|svg)$")

# Only our own files, ever: a page that loads nothing from elsewhere, cannot be
# framed, and does not leak scan URLs through the Referer header.
_PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
        "script-src 'self'; style-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC_DIR / name, media_type=_MEDIA_TYPES[".html"], headers=_PAGE_HEADERS)


@router.get("/handheld", response_class=FileResponse, include_in_schema=False)
def handheld_page() -> FileResponse:
    """The inspectors' handheld page: live alerts, the scan with its boxes, verdicts."""
    return _page("handheld.html")


@router.get("/console", response_class=FileResponse, include_in_schema=False)
def console_page() -> FileResponse:
    """The X-ray readers' console: the live scan feed with boxes and scores."""
    return _page("console.html")


@router.get("/watchlist", response_class=FileResponse, include_in_schema=False)
def watchlist_page() -> FileResponse:
    """The watch-list admin page: cameras, entries, enrolment, revocation, sightings, audit."""
    return _page("watchlist.html")


@router.get("/static/{name}", response_class=FileResponse, include_in_schema=False)
def static_file(name: str) -> FileResponse:
    """One of the pages' files (``cache: no-cache``: revalidated, so upgrades show at once)."""
    path = STATIC_DIR / name
    if not _STATIC_NAME.fullmatch(name) or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no static file {name!r}")
    return FileResponse(
        path,
        media_type=_MEDIA_TYPES[path.suffix],
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


# -- sign in / out ---------------------------------------------------------------------


class SignIn(BaseModel):
    """Body of ``POST /v1/session``."""

    token: str = Field(min_length=1, max_length=200, description="An API token secret.")


class SessionOut(BaseModel):
    """Who is signed in: the token's name, role and what it may do."""

    name: str
    role: str
    permissions: list[str]


def session_out(principal: Principal) -> SessionOut:
    """The API form of a signed-in caller."""
    allowed = [p for p in PERMISSIONS if principal.may(p)]
    return SessionOut(name=principal.name, role=principal.role, permissions=allowed)


@router.post("/v1/session", response_model=SessionOut, tags=["session"])
def sign_in(body: SignIn, request: Request, services: ServicesDep) -> JSONResponse:
    """Checks a token and stores it in the ``cv_token`` cookie (401 if unknown, revoked or
    expired: the detail says which)."""
    secret = body.token.strip()
    with services.sessions() as session:
        try:
            principal = identify(session, secret)
        except TokenRefused as exc:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=f"token: {exc}") from None
    request.state.token = principal.name
    answer = JSONResponse(session_out(principal).model_dump())
    answer.set_cookie(
        COOKIE,
        secret,
        max_age=COOKIE_MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return answer


@router.get("/v1/session", response_model=SessionOut, tags=["session"])
def who_is_signed_in(principal: Annotated[Principal, Depends(get_principal)]) -> SessionOut:
    """The signed-in caller (the cookie's or the ``Authorization`` header's token)."""
    return session_out(principal)


@router.delete("/v1/session", status_code=status.HTTP_204_NO_CONTENT, tags=["session"])
def sign_out(request: Request) -> Response:
    """Clears the ``cv_token`` cookie; the token itself stays valid (revoke it with the CLI)."""
    answer = Response(status_code=status.HTTP_204_NO_CONTENT)
    answer.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
    return answer

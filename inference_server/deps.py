"""Typed FastAPI dependencies shared by every router.

Routes stay thin: they declare what they need with these ``Annotated`` aliases
and call services. The :class:`Services` container is built once in the app's
``lifespan`` and kept on ``app.state.services``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.requests import HTTPConnection
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from cv.inference_server.auth import Principal, TokenRefused, identify
from cv.inference_server.settings import ServerSettings


@dataclass
class Services:
    """Everything long-lived that the routes use, built in ``lifespan``.

    Attributes:
        settings: The server's settings.
        engine: The database engine.
        sessions: Session factory bound to ``engine``.
        data_dir: Where scan images are stored.
        extra: Services added by the parts of the server (model host, batcher,
            alert service, risk engine...), by name.
    """

    settings: ServerSettings
    engine: Engine
    sessions: sessionmaker
    data_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__dict__["extra"][name]
        except KeyError:
            raise AttributeError(name) from None


def get_services(request: Request) -> Services:
    """The app's service container."""
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    """A database session for one request, closed afterwards."""
    with services.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def _secret_from(request: HTTPConnection) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    # EventSource and WebSocket clients in browsers cannot set headers.
    return request.query_params.get("token") or request.cookies.get("cv_token")


def get_principal(request: HTTPConnection, services: ServicesDep) -> Principal:
    """The authenticated caller of a request, or of a WebSocket when its route calls it.

    It reads the database: FastAPI runs it in its thread pool (a plain ``def``); a
    WebSocket route calls it with ``asyncio.to_thread``.

    Raises:
        HTTPException: 401 without a token, or with an unknown, revoked or expired one
            (the detail says which).
    """
    secret = _secret_from(request)
    if not secret:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing API token: send 'Authorization: Bearer <token>' "
            "(or ?token=<token> where the client cannot set headers)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        with services.sessions() as session:
            principal = identify(session, secret)
    except TokenRefused as exc:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}
        ) from None
    # The access log names the token of every authenticated request.
    request.state.token = principal.name
    return principal


def require(permission: str) -> Callable[..., Principal]:
    """A dependency that lets through only callers holding ``permission``.

    Raises:
        HTTPException: 403 for a valid token whose role lacks the permission.
    """

    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if not principal.may(permission):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"role {principal.role!r} may not do this (needs {permission!r})",
            )
        return principal

    return check


Scanner = Annotated[Principal, Depends(require("scans:write"))]
Camera = Annotated[Principal, Depends(require("frames:write"))]
SightingReader = Annotated[Principal, Depends(require("sightings:read"))]
Reader = Annotated[Principal, Depends(require("scans:read"))]
Inspector = Annotated[Principal, Depends(require("alerts:write"))]
AlertReader = Annotated[Principal, Depends(require("alerts:read"))]
Admin = Annotated[Principal, Depends(require("admin"))]

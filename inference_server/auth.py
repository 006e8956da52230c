"""API tokens with roles.

A token is ``cvt_`` + 32 random bytes (URL-safe). Only its sha256 is stored: the
secret is shown once, when it is created (``customs-vision serve token``). Tokens
are high-entropy random strings, so a plain sha256 is the right hash (a slow
password hash buys nothing against guessing 256 random bits).

Roles and what they may do:

==========  ===============================================================
scanner     post scans (X-ray machines, the demo feed)
camera      post CCTV frames (a camera or its video gateway); nothing else
reader      read scans, detections, overlays; watch the live scan feed
inspector   everything a reader may, plus receive, acknowledge, confirm and
            reject alerts, re-ID sightings included (with their frames)
admin       everything, plus tokens, model swaps, rule packs, cameras and
            their video sources, watch-list enrolment and revocation, the
            CCTV audit log and purges
==========  ===============================================================

CCTV frames come from their own ``camera`` role rather than ``scanner``: a camera
token leaked from a video network cannot post X-ray scans and an X-ray machine's
token cannot feed the watch-list matcher, and the audit log names which device
sent the frame. Bootstrap tokens are made for the people's roles and the scanner
only (:data:`BOOTSTRAP_ROLES`); camera tokens are made per camera
(``customs-vision serve token create cam-3 --role camera``).

A token may be made to expire (``--expires-in 90d``): from then on it is refused
as a revoked one is, and an open alert or sighting stream ends. Bootstrap tokens
never expire.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from cv.errors import ConfigError
from cv.inference_server.db import Token, as_utc, utcnow

Role = Literal["scanner", "reader", "inspector", "admin", "camera"]
ROLES: tuple[Role, ...] = ("scanner", "reader", "inspector", "admin", "camera")
BOOTSTRAP_ROLES: tuple[Role, ...] = ("scanner", "reader", "inspector", "admin")
"""Roles that get a token at a first start (``bootstrap_tokens``)."""

# What each role may do, by permission name; routes ask for a permission.
PERMISSIONS: dict[str, frozenset[Role]] = {
    "scans:write": frozenset({"scanner", "admin"}),
    "scans:read": frozenset({"reader", "inspector", "admin"}),
    "alerts:read": frozenset({"inspector", "admin"}),
    "alerts:write": frozenset({"inspector", "admin"}),
    "frames:write": frozenset({"camera", "admin"}),
    "sightings:read": frozenset({"inspector", "admin"}),
    "admin": frozenset({"admin"}),
}

PREFIX = "cvt_"

NAME_MAX = 64
"""Longest token name (the ``tokens.name`` column)."""
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]*")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's name and role, and when the token expires (``None``:
    never; aware UTC)."""

    name: str
    role: Role
    expires_at: datetime | None = None

    def may(self, permission: str) -> bool:
        """Whether this caller holds ``permission``."""
        return self.role in PERMISSIONS[permission]

    def expired(self) -> bool:
        """Whether the token has expired by now."""
        return is_expired(self.expires_at)


def is_expired(expires_at: datetime | None) -> bool:
    """Whether a token expiring at ``expires_at`` (``None``: never; naive means UTC, as
    SQLite gives it back) has expired by now."""
    return expires_at is not None and as_utc(expires_at) <= utcnow()


class TokenRefused(Exception):
    """A secret that opens nothing: an unknown, revoked or expired token (the message
    says which, and when it was revoked or expired, for the 401's detail)."""


def hash_secret(secret: str) -> str:
    """The sha256 hex digest stored for a token secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def check_token_name(name: str) -> None:
    """Checks a token name: what the access and audit logs call its holder.

    Raises:
        ConfigError: Unless the name is 1-64 letters, digits and ``._@+-``, starting
            with a letter or digit.
    """
    if not name:
        raise ConfigError("a token needs a name (a device or a person)", field="name")
    if len(name) > NAME_MAX:
        raise ConfigError(
            f"{name[:NAME_MAX]!r}... is {len(name)} characters; at most {NAME_MAX}", field="name"
        )
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"{name!r}: use letters, digits and . _ @ + - (starting with a letter or digit)",
            field="name",
        )


def create_token(
    session: Session, *, name: str, role: str, expires_in: timedelta | None = None
) -> str:
    """Creates a token and returns its secret (shown once, never stored).

    Args:
        session: A database session.
        name: What the access and audit logs call the holder.
        role: One of :data:`ROLES`.
        expires_in: How long the token works from now; ``None``: until it is revoked.

    Raises:
        ConfigError: If the name is not a valid token name (:func:`check_token_name`),
            the role is unknown, the name is taken or ``expires_in`` is not positive.
    """
    check_token_name(name)
    if role not in ROLES:
        raise ConfigError(f"unknown role {role!r}; roles: {', '.join(ROLES)}", field="role")
    if expires_in is not None and expires_in <= timedelta(0):
        raise ConfigError(f"must be positive, got {expires_in}", field="expires_in")
    if session.scalar(select(Token).where(Token.name == name)) is not None:
        raise ConfigError(f"a token called {name!r} exists already", field="name")
    secret = PREFIX + secrets.token_urlsafe(32)
    expires_at = None if expires_in is None else utcnow() + expires_in
    session.add(
        Token(name=name, role=role, secret_sha256=hash_secret(secret), expires_at=expires_at)
    )
    session.commit()
    return secret


def revoke_token(session: Session, *, name: str) -> None:
    """Revokes the token called ``name``.

    Raises:
        ConfigError: If there is no live token of that name.
    """
    token = session.scalar(select(Token).where(Token.name == name, Token.revoked_at.is_(None)))
    if token is None:
        raise ConfigError(f"no live token called {name!r}", field="name")
    token.revoked_at = utcnow()
    session.commit()


def identify(session: Session, secret: str) -> Principal:
    """The caller a secret belongs to.

    Raises:
        TokenRefused: For an unknown token (``unknown API token``), a revoked one
            (``API token revoked at <time>``) or one past its expiry (``API token
            expired at <time>``).
    """
    token = None
    if secret.startswith(PREFIX):
        # Revoked ones too, so that the refusal can say so (the hash is unique).
        token = session.scalar(select(Token).where(Token.secret_sha256 == hash_secret(secret)))
    if token is None:
        raise TokenRefused("unknown API token")
    if token.revoked_at is not None:
        raise TokenRefused(f"API token revoked at {expiry_text(token.revoked_at)}")
    expires_at = None if token.expires_at is None else as_utc(token.expires_at)
    principal = Principal(token.name, token.role, expires_at)  # type: ignore[arg-type]
    if principal.expired():
        raise TokenRefused(f"API token expired at {expiry_text(expires_at)}")
    return principal


def authenticate(session: Session, secret: str) -> Principal | None:
    """The caller a secret belongs to, or ``None`` for an unknown, revoked or expired
    token (:func:`identify` says which)."""
    try:
        return identify(session, secret)
    except TokenRefused:
        return None


def expiry_text(expires_at: datetime | None) -> str:
    """An expiry (or a revocation time) as people read it: ISO 8601 to the second
    (``never`` for ``None``)."""
    return "never" if expires_at is None else as_utc(expires_at).isoformat(timespec="seconds")


def list_tokens(session: Session) -> Sequence[Token]:
    """Every token, newest first (secrets are not stored, so none are shown)."""
    return session.scalars(select(Token).order_by(Token.created_at.desc())).all()

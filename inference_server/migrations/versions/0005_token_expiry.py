"""API tokens may expire

Revision ID: 0005
Revises: 0004

``tokens.expires_at`` (nullable: tokens made before this revision, bootstrap
tokens and those made without ``--expires-in`` never expire). An expired token
is refused as a revoked one is, and open alert streams end when it expires.
Plain ``ADD COLUMN`` / ``DROP COLUMN`` on SQLite (3.35 or newer) and PostgreSQL.

The downgrade fails closed. Before this revision only ``revoked_at`` stopped a
token, so dropping ``expires_at`` alone would make every token that has an expiry
valid for ever. It first revokes them: an expired token is revoked at its expiry
(``revoked_at = COALESCE(revoked_at, expires_at)``), and a token whose expiry is
still ahead is revoked now, at the downgrade, rather than left working with no end
(an older server cannot end it then; make its holder a new token after the
downgrade if it must go on working). Tokens that never expire are left alone.
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_tokens = sa.table(
    "tokens",
    sa.column("revoked_at", sa.DateTime(timezone=True)),
    sa.column("expires_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    op.add_column("tokens", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    now = datetime.now(UTC)
    live = _tokens.c.revoked_at.is_(None)
    # Expired ones: revoked when they expired.
    op.execute(
        _tokens.update()
        .where(live, _tokens.c.expires_at <= now)
        .values(revoked_at=_tokens.c.expires_at)
    )
    # Not expired yet: revoked now (fail closed), as 0004 has no way to end them later.
    op.execute(
        _tokens.update().where(live, _tokens.c.expires_at.is_not(None)).values(revoked_at=now)
    )
    op.drop_column("tokens", "expires_at")

"""API tokens may expire

Revision ID: 0005
Revises: 0004

``tokens.expires_at`` (nullable: tokens made before this revision, bootstrap
tokens and those made without ``--expires-in`` never expire). An expired token
is refused as a revoked one is, and open alert streams end when it expires.
Plain ``ADD COLUMN`` / ``DROP COLUMN`` on SQLite (3.35 or newer) and PostgreSQL.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tokens", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("tokens", "expires_at")

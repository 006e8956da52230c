"""Each set of a camera's video source has its own identity: a generation counter

Revision ID: 0006
Revises: 0005

``cameras.source_generation`` (not null, 0 for the rows that exist: their kept
source, if any, is generation 0) is incremented by every ``PUT`` and ``DELETE``
of the camera's source, in the transaction that makes the change. A worker keeps
the generation it was started with, and the process that runs it stops it once
the kept generation has moved (``CctvService.sync_sources``): before, processes
compared the URL and settings only, so a source set again to the very same ones
through another process left two workers on one camera. Plain ``ADD COLUMN`` /
``DROP COLUMN`` on SQLite (3.35 or newer) and PostgreSQL.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "cameras",
        sa.Column("source_generation", sa.Integer(), server_default="0", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("cameras", "source_generation")

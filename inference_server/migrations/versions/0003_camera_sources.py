"""Cameras' video sources survive a restart: pacing, looping and a finished file

Revision ID: 0003
Revises: 0002

``cameras.source_url`` was already kept; with these columns the server can start
a camera's source again as it was set (``source_realtime``, ``source_loop``),
and leaves alone a file that was read to its end without looping
(``source_finished_at``, with the worker's last status in ``source_report``).
Plain ``ADD COLUMN`` / ``DROP COLUMN`` on SQLite (3.35 or newer) and PostgreSQL.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "cameras",
        sa.Column("source_realtime", sa.Boolean(), server_default=sa.true(), nullable=False),
    )
    op.add_column(
        "cameras",
        sa.Column("source_loop", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        "cameras", sa.Column("source_finished_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("cameras", sa.Column("source_report", sa.JSON(), nullable=True))


def downgrade() -> None:
    for column in ("source_report", "source_finished_at", "source_loop", "source_realtime"):
        op.drop_column("cameras", column)

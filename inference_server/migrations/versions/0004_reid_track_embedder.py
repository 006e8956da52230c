"""Stored tracks name the re-ID model that embedded them; embedder ids follow the weights

Revision ID: 0004
Revises: 0003

``reid_tracks.embedder`` (nullable: rows stored before this revision do not say
which model made them, and a retrospective search skips them) lets a search
compare an entry only with tracks of the same model.

An embedder's id (``name@version:hash``) used to take the smallest sha256 of any
of its files, for the shipped models the ONNX graph's, which every re-export
changes although the weights and the embeddings do not. It now takes the
weights file's (``state_dict``). The watch-list entries enrolled with the
shipped models under their old ids are renamed here, so that they go on
matching whatever was exported since; the server renames those of any other
model when it loads it (``cv.inference_server.cctv.adopt_legacy_embedder_id``).
The audit log keeps the ids it was written with. Plain ``ADD COLUMN`` /
``DROP COLUMN`` and ``UPDATE`` on SQLite (3.35 or newer) and PostgreSQL.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Old id -> new id of the re-ID models shipped in models/zoo/reid-osnet: the same
# files (model.onnx's and model.safetensors' sha256 in their model.json).
SHIPPED = {
    "reid-osnet-synth@1:58b98c64ea0c": "reid-osnet-synth@1:7112c9e075b5",
    "reid-osnet-erase@1:56928858fc15": "reid-osnet-erase@1:5f3c27704c92",
}

_entries = sa.table("watchlist_entries", sa.column("embedder", sa.String(160)))


def _rename(pairs: dict[str, str]) -> None:
    for old, new in pairs.items():
        op.execute(_entries.update().where(_entries.c.embedder == old).values(embedder=new))


def upgrade() -> None:
    op.add_column("reid_tracks", sa.Column("embedder", sa.String(length=160), nullable=True))
    _rename(SHIPPED)


def downgrade() -> None:
    _rename({new: old for old, new in SHIPPED.items()})
    op.drop_column("reid_tracks", "embedder")

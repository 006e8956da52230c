"""Alembic environment: runs migrations on the connection :func:`cv.inference_server.db.migrate` passes."""

from alembic import context

from cv.inference_server.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through cv.inference_server.db.migrate(engine)")


def include_object(obj: object, name: str, type_: str, reflected: bool, compare_to: object) -> bool:
    """Leaves the risk engine's tables (``risk_*``, made by its own store) to it."""
    return not (type_ == "table" and name.startswith("risk_"))


context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    include_object=include_object,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

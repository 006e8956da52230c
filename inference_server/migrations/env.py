"""Alembic environment: runs migrations on the connection :func:`cv.inference_server.db.migrate` passes."""

from alembic import context

from cv.inference_server.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through cv.inference_server.db.migrate(engine)")
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()

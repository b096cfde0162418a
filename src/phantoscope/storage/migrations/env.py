"""Alembic's environment: runs revisions on the connection :mod:`phantoscope.storage.migrations`
hands over (``config.attributes["connection"]``); there is no alembic.ini."""

from alembic import context

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=None,
    transaction_per_migration=True,  # a revision applied is committed before the next starts
)
with context.begin_transaction():
    context.run_migrations()

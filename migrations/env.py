"""Alembic environment: migrations run as the table owner (KIBAN_DATABASE_ADMIN_URL)."""

from __future__ import annotations

from alembic import context

from kiban.platform import settings as settings_module
from kiban.platform.db import make_engine

config = context.config
# Only for autogenerating a revision (`alembic -x autogenerate=1 revision --autogenerate`);
# revisions themselves never import the models.
target_metadata = None
if config.attributes.get("autogenerate") or context.get_x_argument(as_dictionary=True).get(
        "autogenerate"):
    import kiban.assist.store
    import kiban.identity.store
    import kiban.linkage.store
    import kiban.opendata.store
    import kiban.platform.tables
    import kiban.privacy.store
    import kiban.registry.store
    import kiban.standard.store
    import kiban.talent.store
    import kiban.tax.batch_store
    import kiban.tax.settings_store  # noqa: F401
    from kiban.platform.db import metadata as target_metadata


def run() -> None:
    url = config.attributes.get("url") or settings_module.load().admin_database_url
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(url, pool_size=1)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()

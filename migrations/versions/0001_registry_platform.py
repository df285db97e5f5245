"""Platform and resident registry tables; on PostgreSQL, hash partitions by 地方公共団体コード,
row-level security, and the application role's grants.

Revision ID: 0001
Revises:
"""

from alembic import op
from sqlalchemy import text

import kiban.platform.tables
import kiban.registry.store  # noqa: F401 - registers the registry tables
from kiban.platform import settings as settings_module
from kiban.platform.db import PARTITIONS, TENANT_TABLES, metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# moveout_transfers is read by the destination municipality too.
POLICIES = {
    "moveout_transfers": "lgcode = current_setting('kiban.lgcode', true) "
                         "OR dest_lgcode = current_setting('kiban.lgcode', true)",
}
TENANT_ONLY = "lgcode = current_setting('kiban.lgcode', true)"


def upgrade() -> None:
    bind = op.get_bind()
    metadata.create_all(bind)
    if bind.dialect.name != "postgresql":
        return
    role = settings_module.load().app_role
    op.execute(text(f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
            CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS;
          END IF;
        END $$;"""))
    for table in TENANT_TABLES:
        for i in range(PARTITIONS):
            op.execute(f"CREATE TABLE {table}_p{i} PARTITION OF {table} "
                       f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i})")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        policy = POLICIES.get(table, TENANT_ONLY)
        op.execute(f"CREATE POLICY tenant_isolation ON {table} "
                   f"USING ({policy}) WITH CHECK ({TENANT_ONLY if table not in POLICIES else policy})")
    # The application role owns nothing and may touch only the parent tables, never a
    # partition directly (partitions have no policies of their own).
    op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    tables = [t.name for t in metadata.sorted_tables]
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(tables)} TO {role}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")
    # The ledger is append-only for the application.
    op.execute(f"REVOKE UPDATE, DELETE ON ledger_entries FROM {role}")


def downgrade() -> None:
    metadata.drop_all(op.get_bind())

"""Registry features of the standard: 支援措置による抑止 (suppressions, JR-0301..0303), the
access log (JR-1005), and the requester of a certificate (JR-0505). On PostgreSQL the new
personal-data tables are hash-partitioned by 地方公共団体コード and guarded by row-level
security, like those of 0001, with the application role's grants.

Revision ID: 0004
Revises: 0003
"""

import os

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

PARTITIONS = 8  # as 0001
TENANT_TABLES = ("suppressions", "access_log")
CURRENT = "current_setting('kiban.lgcode', true)"


def upgrade() -> None:
    op.create_table('suppressions',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('resident_id', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=False),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('ended_on', sa.Date(), nullable=True),
    sa.Column('end_reason', sa.String(length=200), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_by', sa.String(length=32), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('lgcode', 'id', name=op.f('pk_suppressions')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_index('ix_suppressions_resident', 'suppressions', ['lgcode', 'resident_id'],
                    unique=False)
    op.create_table('access_log',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('staff_id', sa.String(length=32), nullable=False),
    sa.Column('action', sa.String(length=20), nullable=False),
    sa.Column('resident_id', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'id', name=op.f('pk_access_log')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_index('ix_access_log_resident', 'access_log', ['lgcode', 'resident_id', 'at'],
                    unique=False)
    op.add_column('certificates', sa.Column('requester', sa.JSON(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_tenancy()


def _postgresql_tenancy() -> None:
    role = os.environ.get("KIBAN_APP_ROLE", "kiban_app")
    for table in TENANT_TABLES:
        for i in range(PARTITIONS):
            op.execute(f"CREATE TABLE {table}_p{i} PARTITION OF {table} "
                       f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i})")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} "
                   f"USING (lgcode = {CURRENT}) WITH CHECK (lgcode = {CURRENT})")
    # Suppressions are ended, never deleted; the access log is append-only.
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON suppressions TO {role}")
    op.execute(f"GRANT SELECT, INSERT ON access_log TO {role}")


def downgrade() -> None:
    with op.batch_alter_table('certificates') as batch:
        batch.drop_column('requester')
    op.drop_index('ix_access_log_resident', table_name='access_log')
    op.drop_table('access_log')
    op.drop_index('ix_suppressions_resident', table_name='suppressions')
    op.drop_table('suppressions')

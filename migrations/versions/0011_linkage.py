"""Inter-agency exchange hub (issue 6): members and their services, the versioned permission
table, the hub's code register, the public Merkle log and its signed tree heads (platform
tables, no personal data); and per municipality, hash-partitioned by 地方公共団体コード and
guarded by row-level security like the registry tables, the mapping of the municipality's
registry code to its resident and each exchange about one of its residents.

Revision ID: 0011
Revises: 0010
"""

import os

import sqlalchemy as sa
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

PARTITIONS = 8  # as 0001
TENANT_TABLES = ("linkage_residents", "linkage_resident_exchanges")
CURRENT = "current_setting('kiban.lgcode', true)"


def upgrade() -> None:
    op.create_table('linkage_members',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('lgcode', sa.String(length=6), nullable=True),
    sa.Column('endpoint', sa.String(length=500), nullable=False),
    sa.Column('certificate', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_linkage_members'))
    )
    op.create_table('linkage_services',
    sa.Column('member_id', sa.String(length=200), nullable=False),
    sa.Column('item', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=300), nullable=False),
    sa.PrimaryKeyConstraint('member_id', 'item', name=op.f('pk_linkage_services'))
    )
    op.create_table('linkage_permission_versions',
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_by', sa.String(length=100), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_linkage_permission_versions'))
    )
    op.create_table('linkage_permissions',
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('requester', sa.String(length=200), nullable=False),
    sa.Column('provider', sa.String(length=200), nullable=False),
    sa.Column('item', sa.String(length=100), nullable=False),
    sa.Column('procedure', sa.String(length=64), nullable=False),
    sa.Column('legal_basis', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('version', 'seq', name=op.f('pk_linkage_permissions'))
    )
    op.create_table('linkage_codes',
    sa.Column('member_id', sa.String(length=200), nullable=False),
    sa.Column('code', sa.String(length=24), nullable=False),
    sa.Column('person', sa.String(length=32), nullable=False),
    sa.Column('home_lgcode', sa.String(length=6), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('member_id', 'code', name=op.f('pk_linkage_codes'))
    )
    op.create_index('ix_linkage_codes_person', 'linkage_codes', ['person', 'member_id'], unique=True)
    op.create_table('linkage_log',
    sa.Column('leaf_index', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('leaf_hash', sa.String(length=64), nullable=False),
    sa.Column('entry', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('client', sa.String(length=200), nullable=False),
    sa.Column('provider', sa.String(length=200), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('leaf_index', name=op.f('pk_linkage_log'))
    )
    op.create_index('ix_linkage_log_at', 'linkage_log', ['at'], unique=False)
    op.create_index('ix_linkage_log_leaf_hash', 'linkage_log', ['leaf_hash'], unique=False)
    op.create_table('linkage_tree_heads',
    sa.Column('tree_size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('timestamp', sa.BigInteger(), nullable=False),
    sa.Column('root_hash', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('tree_size', name=op.f('pk_linkage_tree_heads'))
    )
    op.create_table('linkage_residents',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('person', sa.String(length=32), nullable=False),
    sa.Column('resident_id', sa.String(length=32), nullable=False),
    sa.Column('code', sa.String(length=24), nullable=False),
    sa.Column('enrolled_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'person', name=op.f('pk_linkage_residents')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_index('ix_linkage_residents_code', 'linkage_residents', ['lgcode', 'code'], unique=True)
    op.create_index('ix_linkage_residents_resident', 'linkage_residents', ['lgcode', 'resident_id'],
                    unique=False)
    op.create_table('linkage_resident_exchanges',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('leaf_index', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('resident_id', sa.String(length=32), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('client', sa.String(length=200), nullable=False),
    sa.Column('provider', sa.String(length=200), nullable=False),
    sa.Column('item', sa.String(length=100), nullable=False),
    sa.Column('procedure', sa.String(length=64), nullable=False),
    sa.Column('legal_basis', sa.String(length=200), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=40), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'leaf_index', name=op.f('pk_linkage_resident_exchanges')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_index('ix_linkage_resident_exchanges_resident', 'linkage_resident_exchanges',
                    ['lgcode', 'resident_id', 'at'], unique=False)
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
    # The log, its heads, codes and both tenant tables are append-only for the application.
    op.execute(f"GRANT SELECT, INSERT ON linkage_log, linkage_tree_heads, linkage_codes, "
               f"linkage_permission_versions, linkage_permissions, {', '.join(TENANT_TABLES)} TO {role}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON linkage_members TO {role}")
    op.execute(f"GRANT SELECT, INSERT, DELETE ON linkage_services TO {role}")


def downgrade() -> None:
    for table in ("linkage_resident_exchanges", "linkage_residents", "linkage_tree_heads", "linkage_log",
                  "linkage_codes", "linkage_permissions", "linkage_permission_versions", "linkage_services",
                  "linkage_members"):
        op.drop_table(table)

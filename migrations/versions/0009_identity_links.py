"""Identity (issue 5 parts 4 and 5): certificates linked to resident records and their
revocations, the registry change-feed cursor, OpenID Connect authorization codes, and the
serial -> municipality index a login needs. The personal-data tables are hash-partitioned by
地方公共団体コード and guarded by row-level security on PostgreSQL, like those of 0001.

Revision ID: 0009
Revises: 0008
"""

import os

import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

PARTITIONS = 8  # as 0001
CURRENT = "current_setting('kiban.lgcode', true)"
TENANT_TABLES = ("identity_card_links", "identity_feed_cursors", "identity_oidc_codes")


def upgrade() -> None:
    op.create_table('identity_card_links',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('serial', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('resident_id', sa.String(length=32), nullable=False),
    sa.Column('juminhyo_code', sa.String(length=11), nullable=False),
    sa.Column('card_id', sa.String(length=40), nullable=False),
    sa.Column('linked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revocation_reason', sa.String(length=40), nullable=True),
    sa.Column('revoked_by_event', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('lgcode', 'serial', name=op.f('pk_identity_card_links')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_table('identity_feed_cursors',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('after_seq', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', name=op.f('pk_identity_feed_cursors')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_table('identity_oidc_codes',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('challenge_id', sa.String(length=64), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('client_id', sa.String(length=100), nullable=False),
    sa.Column('redirect_uri', sa.String(length=500), nullable=False),
    sa.Column('code_challenge', sa.String(length=100), nullable=False),
    sa.Column('nonce', sa.String(length=200), nullable=False),
    sa.Column('scope', sa.String(length=200), nullable=False),
    sa.Column('serial', sa.String(length=40), nullable=False),
    sa.Column('auth_time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('lgcode', 'challenge_id', name=op.f('pk_identity_oidc_codes')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_table('identity_card_index',
    sa.Column('serial', sa.String(length=40), nullable=False),
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.PrimaryKeyConstraint('serial', name=op.f('pk_identity_card_index'))
    )
    if op.get_bind().dialect.name == "postgresql":
        role = os.environ.get("KIBAN_APP_ROLE", "kiban_app")
        for table in TENANT_TABLES:
            for i in range(PARTITIONS):
                op.execute(f"CREATE TABLE {table}_p{i} PARTITION OF {table} "
                           f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i})")
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"CREATE POLICY tenant_isolation ON {table} "
                       f"USING (lgcode = {CURRENT}) WITH CHECK (lgcode = {CURRENT})")
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON {', '.join(TENANT_TABLES)} TO {role}")
        op.execute(f"GRANT SELECT, INSERT ON identity_card_index TO {role}")


def downgrade() -> None:
    op.drop_table('identity_card_index')
    op.drop_table('identity_oidc_codes')
    op.drop_table('identity_feed_cursors')
    op.drop_table('identity_card_links')

"""Signed documents (issue 5 part 6): each municipality's document-signing certificates (and,
for a key the test CA issued, its private key), and on every certificate the hash of the signed
PDF and its withdrawal. On PostgreSQL the new table is hash-partitioned by 地方公共団体コード
and guarded by row-level security, like those of 0001 and 0004.

Revision ID: 0005
Revises: 0004
"""

import os

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

PARTITIONS = 8  # as 0001
CURRENT = "current_setting('kiban.lgcode', true)"


def upgrade() -> None:
    op.create_table('document_signing_keys',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('certificate', sa.Text(), nullable=False),
    sa.Column('chain', sa.Text(), nullable=False),
    sa.Column('private_key', sa.Text(), nullable=True),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'fingerprint', name=op.f('pk_document_signing_keys')),
    postgresql_partition_by='HASH (lgcode)'
    )
    with op.batch_alter_table('certificates') as batch:
        batch.add_column(sa.Column('signed_hash', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('withdrawn_by', sa.String(length=32), nullable=True))
        batch.add_column(sa.Column('withdrawal_reason', sa.String(length=200), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        role = os.environ.get("KIBAN_APP_ROLE", "kiban_app")
        for i in range(PARTITIONS):
            op.execute(f"CREATE TABLE document_signing_keys_p{i} PARTITION OF document_signing_keys "
                       f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i})")
        op.execute("ALTER TABLE document_signing_keys ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON document_signing_keys "
                   f"USING (lgcode = {CURRENT}) WITH CHECK (lgcode = {CURRENT})")
        # Keys are added, never changed or deleted by the application (certificates already
        # grant UPDATE, which withdrawal needs).
        op.execute(f"GRANT SELECT, INSERT ON document_signing_keys TO {role}")


def downgrade() -> None:
    with op.batch_alter_table('certificates') as batch:
        batch.drop_column('withdrawal_reason')
        batch.drop_column('withdrawn_by')
        batch.drop_column('withdrawn_at')
        batch.drop_column('signed_hash')
    op.drop_table('document_signing_keys')

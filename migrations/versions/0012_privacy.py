"""Privacy (issue 9): purpose-bound access records (personal data: hash-partitioned by
地方公共団体コード, row-level security, append-only for the application), calls for
proposals, anonymised-data proposals, privacy budgets and DP releases.

Revision ID: 0012
Revises: 0011
"""

import os

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

PARTITIONS = 8  # as 0001
CURRENT = "current_setting('kiban.lgcode', true)"
PLAIN = ("privacy_proposal_calls", "privacy_proposals", "privacy_budgets", "privacy_releases")


def upgrade() -> None:
    op.create_table('privacy_access_records',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('staff_id', sa.String(length=32), nullable=False),
    sa.Column('department', sa.String(length=100), nullable=False),
    sa.Column('roles', sa.String(length=200), nullable=False),
    sa.Column('resident_id', sa.String(length=32), nullable=False),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('purpose', sa.String(length=40), nullable=False),
    sa.Column('channel', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('flagged', sa.Boolean(), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('lgcode', 'id', name=op.f('pk_privacy_access_records')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_index('ix_privacy_access_records_resident', 'privacy_access_records',
                    ['lgcode', 'resident_id', 'at'], unique=False)
    op.create_index('ix_privacy_access_records_flagged', 'privacy_access_records',
                    ['lgcode', 'flagged', 'at'], unique=False)
    op.create_table('privacy_proposal_calls',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('opens_on', sa.Date(), nullable=False),
    sa.Column('closes_on', sa.Date(), nullable=False),
    sa.Column('files', sa.JSON(), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_proposal_calls'))
    )
    op.create_index(op.f('ix_privacy_proposal_calls_lgcode'), 'privacy_proposal_calls',
                    ['lgcode'], unique=False)
    op.create_table('privacy_proposals',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('call_id', sa.String(length=32), nullable=False),
    sa.Column('file_id', sa.String(length=40), nullable=False),
    sa.Column('proposer', sa.JSON(), nullable=False),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('items', sa.JSON(), nullable=False),
    sa.Column('sensitive', sa.String(length=40), nullable=True),
    sa.Column('k', sa.Integer(), nullable=False),
    sa.Column('l', sa.Integer(), nullable=False),
    sa.Column('use_from', sa.Date(), nullable=False),
    sa.Column('use_to', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('refusals', sa.JSON(), nullable=False),
    sa.Column('screening', sa.JSON(), nullable=True),
    sa.Column('processing', sa.JSON(), nullable=True),
    sa.Column('contract', sa.JSON(), nullable=True),
    sa.Column('dataset_csv', sa.Text(), nullable=True),
    sa.Column('dataset_sha256', sa.String(length=64), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_proposals'))
    )
    op.create_index(op.f('ix_privacy_proposals_lgcode'), 'privacy_proposals', ['lgcode'],
                    unique=False)
    op.create_table('privacy_budgets',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('dataset', sa.String(length=60), nullable=False),
    sa.Column('epsilon_total', sa.Float(), nullable=False),
    sa.Column('epsilon_spent', sa.Float(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'dataset', name=op.f('pk_privacy_budgets'))
    )
    op.create_table('privacy_releases',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('dataset', sa.String(length=60), nullable=False),
    sa.Column('query', sa.JSON(), nullable=False),
    sa.Column('epsilon', sa.Float(), nullable=False),
    sa.Column('result', sa.JSON(), nullable=False),
    sa.Column('released_by', sa.String(length=32), nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_privacy_releases'))
    )
    op.create_index('ix_privacy_releases_dataset', 'privacy_releases',
                    ['lgcode', 'dataset', 'released_at'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        role = os.environ.get("KIBAN_APP_ROLE", "kiban_app")
        table = "privacy_access_records"
        for i in range(PARTITIONS):
            op.execute(f"CREATE TABLE {table}_p{i} PARTITION OF {table} "
                       f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i})")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} "
                   f"USING (lgcode = {CURRENT}) WITH CHECK (lgcode = {CURRENT})")
        # Access records are append-only; releases are history.
        op.execute(f"GRANT SELECT, INSERT ON {table}, privacy_releases TO {role}")
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON privacy_proposal_calls, privacy_proposals, "
                   f"privacy_budgets TO {role}")


def downgrade() -> None:
    op.drop_index('ix_privacy_releases_dataset', table_name='privacy_releases')
    op.drop_table('privacy_releases')
    op.drop_table('privacy_budgets')
    op.drop_index(op.f('ix_privacy_proposals_lgcode'), table_name='privacy_proposals')
    op.drop_table('privacy_proposals')
    op.drop_index(op.f('ix_privacy_proposal_calls_lgcode'), table_name='privacy_proposal_calls')
    op.drop_table('privacy_proposal_calls')
    op.drop_index('ix_privacy_access_records_flagged', table_name='privacy_access_records')
    op.drop_index('ix_privacy_access_records_resident', table_name='privacy_access_records')
    op.drop_table('privacy_access_records')

"""Online procedures (issue 7): applications (drafts, signed originals, content hashes,
verified signer, fetched evidence, delivered documents), the steps taken on them and the
resident's notifications. All personal data: hash-partitioned by 地方公共団体コード, with
row-level security, as 0012.

Revision ID: 0015
Revises: 0014
"""

import os
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

PARTITIONS = 8  # as 0001
CURRENT = "current_setting('kiban.lgcode', true)"
TABLES = ("procedure_applications", "procedure_steps", "procedure_notifications")


def upgrade() -> None:
    part: dict[str, Any] = {"postgresql_partition_by": "HASH (lgcode)"}
    op.create_table('procedure_applications',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('procedure_id', sa.String(length=64), nullable=False),
    sa.Column('resident_id', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('form', sa.JSON(), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=True),
    sa.Column('signature', sa.LargeBinary(), nullable=True),
    sa.Column('content_hash', sa.String(length=64), nullable=True),
    sa.Column('idempotency_key', sa.String(length=64), nullable=True),
    sa.Column('signer', sa.JSON(), nullable=True),
    sa.Column('evidence', sa.JSON(), nullable=True),
    sa.Column('claimed_by', sa.String(length=32), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('last_error', sa.JSON(), nullable=True),
    sa.Column('notify_email', sa.String(length=254), nullable=True),
    sa.Column('document_serial', sa.String(length=64), nullable=True),
    sa.Column('document', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'id', name=op.f('pk_procedure_applications')),
    sa.UniqueConstraint('lgcode', 'content_hash', name='uq_procedure_applications_hash'),
    sa.UniqueConstraint('lgcode', 'idempotency_key', name='uq_procedure_applications_idem'),
    **part)
    op.create_index('ix_procedure_applications_queue', 'procedure_applications',
                    ['lgcode', 'procedure_id', 'state', 'submitted_at'])
    op.create_index('ix_procedure_applications_resident', 'procedure_applications',
                    ['lgcode', 'resident_id', 'updated_at'])
    op.create_table('procedure_steps',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('application_id', sa.String(length=32), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=24), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('lgcode', 'id', name=op.f('pk_procedure_steps')),
    **part)
    op.create_index('ix_procedure_steps_application', 'procedure_steps', ['lgcode', 'application_id', 'at'])
    op.create_table('procedure_notifications',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('resident_id', sa.String(length=32), nullable=False),
    sa.Column('application_id', sa.String(length=32), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('message_ja', sa.Text(), nullable=False),
    sa.Column('message_en', sa.Text(), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('lgcode', 'id', name=op.f('pk_procedure_notifications')),
    **part)
    op.create_index('ix_procedure_notifications_resident', 'procedure_notifications',
                    ['lgcode', 'resident_id', 'at'])
    if op.get_bind().dialect.name == "postgresql":
        role = os.environ.get("KIBAN_APP_ROLE", "kiban_app")
        for table in TABLES:
            for i in range(PARTITIONS):
                op.execute(f"CREATE TABLE {table}_p{i} PARTITION OF {table} "
                           f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i})")
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"CREATE POLICY tenant_isolation ON {table} "
                       f"USING (lgcode = {CURRENT}) WITH CHECK (lgcode = {CURRENT})")
        # Steps are history: append-only for the application.
        op.execute(f"GRANT SELECT, INSERT ON procedure_steps TO {role}")
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON procedure_applications, procedure_notifications TO {role}")


def downgrade() -> None:
    op.drop_index('ix_procedure_notifications_resident', table_name='procedure_notifications')
    op.drop_table('procedure_notifications')
    op.drop_index('ix_procedure_steps_application', table_name='procedure_steps')
    op.drop_table('procedure_steps')
    op.drop_index('ix_procedure_applications_resident', table_name='procedure_applications')
    op.drop_index('ix_procedure_applications_queue', table_name='procedure_applications')
    op.drop_table('procedure_applications')

"""Life events (issue 7 parts 4 and 5): moves sent and received through the exchange hub,
counter slots, life-event tasks and the change-feed cursor — personal data, hash-partitioned
by 地方公共団体コード with row-level security on PostgreSQL — and the portal index (a hash
of the portal subject and the move it may see; no personal data).

Revision ID: 0016
Revises: 0015
"""

import os

import sqlalchemy as sa
from alembic import op

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

PARTITIONS = 8  # as 0001
CURRENT = "current_setting('kiban.lgcode', true)"
TENANT = ("life_moves", "life_arrivals", "life_incoming", "life_slots", "life_tasks", "life_cursors")
PART = {"postgresql_partition_by": "HASH (lgcode)"}


def upgrade() -> None:
    op.create_table('life_moves',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('application_id', sa.String(length=64), nullable=True),
    sa.Column('dest_lgcode', sa.String(length=6), nullable=False),
    sa.Column('resident_ids', sa.JSON(), nullable=False),
    sa.Column('planned_on', sa.Date(), nullable=False),
    sa.Column('registry_event_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('reference', sa.String(length=64), nullable=True),
    sa.Column('certificates', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'id', name=op.f('pk_life_moves')),
    sa.UniqueConstraint('lgcode', 'application_id', name='uq_life_moves_application'),
    **PART)
    op.create_table('life_arrivals',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('move_id', sa.String(length=32), nullable=False),
    sa.Column('from_lgcode', sa.String(length=6), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('reference', sa.String(length=64), nullable=False),
    sa.Column('planned_on', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('slot_id', sa.String(length=32), nullable=True),
    sa.Column('booked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('household_id', sa.String(length=32), nullable=True),
    sa.Column('registry_event_id', sa.String(length=32), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('lgcode', 'move_id', name=op.f('pk_life_arrivals')),
    **PART)
    op.create_table('life_incoming',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('move_id', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('person', sa.JSON(), nullable=False),
    sa.Column('juminhyo_code', sa.String(length=11), nullable=False),
    sa.Column('relationship', sa.String(length=20), nullable=False),
    sa.Column('previous_address', sa.String(length=300), nullable=False),
    sa.Column('peer_code', sa.String(length=24), nullable=True),
    sa.Column('resident_id', sa.String(length=32), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'move_id', 'seq', name=op.f('pk_life_incoming')),
    **PART)
    op.create_table('life_slots',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('booked', sa.Integer(), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'id', name=op.f('pk_life_slots')),
    **PART)
    op.create_index('ix_life_slots_starts', 'life_slots', ['lgcode', 'starts_at'], unique=False)
    op.create_table('life_tasks',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('household_id', sa.String(length=32), nullable=False),
    sa.Column('resident_id', sa.String(length=32), nullable=False),
    sa.Column('procedure_id', sa.String(length=64), nullable=False),
    sa.Column('trigger', sa.String(length=20), nullable=False),
    sa.Column('source_event', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'id', name=op.f('pk_life_tasks')),
    sa.UniqueConstraint('lgcode', 'source_event', 'household_id', 'procedure_id',
                        name='uq_life_tasks_source'),
    **PART)
    op.create_index('ix_life_tasks_household', 'life_tasks', ['lgcode', 'household_id'], unique=False)
    op.create_table('life_cursors',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('after_seq', sa.BigInteger(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', name=op.f('pk_life_cursors')),
    **PART)
    op.create_table('life_portal_index',
    sa.Column('subject_hash', sa.String(length=64), nullable=False),
    sa.Column('move_id', sa.String(length=32), nullable=False),
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('dest_lgcode', sa.String(length=6), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('subject_hash', 'move_id', name=op.f('pk_life_portal_index'))
    )
    if op.get_bind().dialect.name == "postgresql":
        role = os.environ.get("KIBAN_APP_ROLE", "kiban_app")
        for table in TENANT:
            for i in range(PARTITIONS):
                op.execute(f"CREATE TABLE {table}_p{i} PARTITION OF {table} "
                           f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i})")
            op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            op.execute(f"CREATE POLICY tenant_isolation ON {table} "
                       f"USING (lgcode = {CURRENT}) WITH CHECK (lgcode = {CURRENT})")
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON {', '.join(TENANT)} TO {role}")
        op.execute(f"GRANT SELECT, INSERT ON life_portal_index TO {role}")


def downgrade() -> None:
    op.drop_table('life_portal_index')
    op.drop_table('life_cursors')
    op.drop_index('ix_life_tasks_household', table_name='life_tasks')
    op.drop_table('life_tasks')
    op.drop_index('ix_life_slots_starts', table_name='life_slots')
    op.drop_table('life_slots')
    op.drop_table('life_incoming')
    op.drop_table('life_arrivals')
    op.drop_table('life_moves')

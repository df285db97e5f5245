"""The standard: the public deviation register, change proposals with endorsements and
comments; municipalities gain a status (a conformance-test municipality is retired after
the kit's run) and a purpose.

Revision ID: 0003
Revises: 0002
"""

import os

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

TABLES = ("standard_deviations", "standard_proposals", "standard_endorsements",
          "standard_comments")


def upgrade() -> None:
    op.add_column('municipalities', sa.Column('status', sa.String(length=10), nullable=False,
                                              server_default='active'))
    op.add_column('municipalities', sa.Column('purpose', sa.String(length=20), nullable=False,
                                              server_default=''))
    op.create_table('standard_deviations',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('requirement', sa.String(length=10), nullable=False),
    sa.Column('what', sa.Text(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('decided_by', sa.String(length=100), nullable=False),
    sa.Column('decided_on', sa.Date(), nullable=False),
    sa.Column('review_on', sa.Date(), nullable=False),
    sa.Column('setting', sa.String(length=40), nullable=False),
    sa.Column('value', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('recorded_by', sa.String(length=32), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_standard_deviations'))
    )
    op.create_index('ix_standard_deviations_lgcode', 'standard_deviations',
                    ['lgcode', 'requirement'])
    op.create_index('uq_standard_deviations_active', 'standard_deviations',
                    ['lgcode', 'requirement'], unique=True,
                    sqlite_where=sa.text("status = 'active'"),
                    postgresql_where=sa.text("status = 'active'"))
    op.create_table('standard_proposals',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('requirement', sa.String(length=10), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('proposed_text', sa.Text(), nullable=False),
    sa.Column('rationale', sa.Text(), nullable=False),
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('proposed_by', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('decision_reason', sa.Text(), nullable=False),
    sa.Column('decided_by', sa.String(length=32), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('target_version', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_standard_proposals'))
    )
    op.create_index('ix_standard_proposals_status', 'standard_proposals',
                    ['status', 'created_at'])
    op.create_table('standard_endorsements',
    sa.Column('proposal_id', sa.String(length=32), nullable=False),
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('staff_id', sa.String(length=32), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('proposal_id', 'lgcode', name=op.f('pk_standard_endorsements'))
    )
    op.create_table('standard_comments',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('proposal_id', sa.String(length=32), nullable=False),
    sa.Column('lgcode', sa.String(length=6), nullable=True),
    sa.Column('staff_id', sa.String(length=32), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_standard_comments'))
    )
    op.create_index(op.f('ix_standard_comments_proposal_id'), 'standard_comments',
                    ['proposal_id'])
    if op.get_bind().dialect.name == "postgresql":
        role = os.environ.get("KIBAN_APP_ROLE", "kiban_app")
        # Deviations and proposals are public records: never deleted, only withdrawn or decided.
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON {', '.join(TABLES)} TO {role}")


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
    with op.batch_alter_table('municipalities') as batch:
        batch.drop_column('purpose')
        batch.drop_column('status')

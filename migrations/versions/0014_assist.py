"""Shared multilingual assistant (issue 10): FAQs (each municipality's and the shared bank,
owner '000000'), adoptions of shared answers, per-municipality settings, daily usage counters,
feedback, unanswered questions and the cache of embedding vectors. FAQ content is public
information keyed by lgcode, not personal data: not partitioned, no row policies.

Revision ID: 0014
Revises: 0013
"""

import os

import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None

TABLES = ("assist_faqs", "assist_adoptions", "assist_settings", "assist_usage",
          "assist_unanswered", "assist_feedback", "assist_vectors")


def upgrade() -> None:
    op.create_table('assist_faqs',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=100), nullable=False),
    sa.Column('department', sa.String(length=100), nullable=False),
    sa.Column('last_reviewed', sa.Date(), nullable=False),
    sa.Column('review_state', sa.String(length=10), nullable=False),
    sa.Column('keywords', sa.Text(), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=32), nullable=False),
    sa.Column('revision', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assist_faqs'))
    )
    op.create_index('ix_assist_faqs_lgcode', 'assist_faqs', ['lgcode', 'category'])
    op.create_table('assist_adoptions',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('faq_id', sa.String(length=40), nullable=False),
    sa.Column('mode', sa.String(length=10), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('last_reviewed', sa.Date(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revision', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'faq_id', name=op.f('pk_assist_adoptions'))
    )
    op.create_table('assist_settings',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('greeting_ja', sa.Text(), nullable=False),
    sa.Column('greeting_en', sa.Text(), nullable=False),
    sa.Column('tone', sa.String(length=10), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('adopt_shared', sa.Boolean(), nullable=False),
    sa.Column('threshold', sa.Float(), nullable=False),
    sa.Column('inquiry_url', sa.String(length=500), nullable=False),
    sa.Column('revision', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', name=op.f('pk_assist_settings'))
    )
    op.create_table('assist_usage',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('questions', sa.Integer(), nullable=False),
    sa.Column('answered', sa.Integer(), nullable=False),
    sa.Column('handoffs', sa.Integer(), nullable=False),
    sa.Column('helpful', sa.Integer(), nullable=False),
    sa.Column('not_helpful', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'day', name=op.f('pk_assist_usage'))
    )
    op.create_table('assist_unanswered',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('lang', sa.String(length=2), nullable=False),
    sa.Column('best_ref', sa.String(length=80), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('asked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('resolved', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assist_unanswered'))
    )
    op.create_index('ix_assist_unanswered_lgcode', 'assist_unanswered',
                    ['lgcode', 'resolved', 'asked_at'])
    op.create_table('assist_feedback',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('ref', sa.String(length=80), nullable=False),
    sa.Column('helpful', sa.Boolean(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assist_feedback'))
    )
    op.create_index('ix_assist_feedback_lgcode', 'assist_feedback', ['lgcode', 'ref'])
    op.create_table('assist_vectors',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('vector', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_assist_vectors'))
    )
    if op.get_bind().dialect.name == "postgresql":
        role = os.environ.get("KIBAN_APP_ROLE", "kiban_app")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(TABLES)} TO {role}")
        op.execute(f"GRANT USAGE, SELECT ON assist_unanswered_id_seq, assist_feedback_id_seq "
                   f"TO {role}")


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)

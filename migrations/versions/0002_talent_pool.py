"""The specialist pool: skills (seeded with the maintained list), specialists, needs and
their municipalities' shares, engagements, monthly reports, evaluations.

Revision ID: 0002
Revises: 0001
"""

import os

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

# The maintained skill list at its start; platform admins add to it (`kiban talent skill-add`).
SKILLS = (
    ("cloud_migration", "クラウド移行", "Cloud migration"),
    ("information_security", "情報セキュリティ", "Information security"),
    ("data_analysis", "データ分析・EBPM", "Data analysis and evidence-based policy"),
    ("procurement", "調達支援(仕様書・評価)", "Procurement support"),
    ("standard_migration", "標準準拠システム移行", "Migration to the standard systems"),
    ("ux_design", "UX・サービスデザイン", "UX and service design"),
    ("bpr", "業務改革(BPR)", "Business process re-engineering"),
    ("project_management", "プロジェクト管理", "Project management"),
    ("network", "ネットワーク・庁内インフラ", "Networks and office infrastructure"),
    ("ai_utilisation", "生成AI・AI活用", "AI adoption"),
    ("online_procedures", "行政手続のオンライン化", "Online procedures"),
    ("digital_divide", "デジタルデバイド対策", "Digital inclusion"),
)

TABLES = ("talent_skills", "talent_specialists", "talent_needs", "talent_need_shares",
          "talent_engagements", "talent_reports", "talent_evaluations")


def upgrade() -> None:
    skills = op.create_table('talent_skills',
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name_ja', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('code', name=op.f('pk_talent_skills'))
    )
    op.create_table('talent_specialists',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('staff_id', sa.String(length=32), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('skills', sa.JSON(), nullable=False),
    sa.Column('experience', sa.Text(), nullable=False),
    sa.Column('regions', sa.JSON(), nullable=False),
    sa.Column('onsite', sa.Boolean(), nullable=False),
    sa.Column('remote', sa.Boolean(), nullable=False),
    sa.Column('days_per_month', sa.Integer(), nullable=False),
    sa.Column('rate_per_day', sa.Integer(), nullable=False),
    sa.Column('hidden', sa.JSON(), nullable=False),
    sa.Column('listed', sa.Boolean(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_talent_specialists')),
    sa.UniqueConstraint('staff_id', name=op.f('uq_talent_specialists_staff_id'))
    )
    op.create_table('talent_needs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('lead_lgcode', sa.String(length=6), nullable=False),
    sa.Column('title', sa.String(length=100), nullable=False),
    sa.Column('tasks', sa.Text(), nullable=False),
    sa.Column('required_skills', sa.JSON(), nullable=False),
    sa.Column('preferred_skills', sa.JSON(), nullable=False),
    sa.Column('days_per_month', sa.Integer(), nullable=False),
    sa.Column('start_month', sa.String(length=7), nullable=False),
    sa.Column('end_month', sa.String(length=7), nullable=False),
    sa.Column('onsite_percent', sa.Integer(), nullable=False),
    sa.Column('budget_per_month', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_talent_needs'))
    )
    op.create_index('ix_talent_needs_status', 'talent_needs', ['status', 'start_month'])
    op.create_table('talent_need_shares',
    sa.Column('need_id', sa.String(length=32), nullable=False),
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('days', sa.Integer(), nullable=False),
    sa.Column('confirmed', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('need_id', 'lgcode', name=op.f('pk_talent_need_shares'))
    )
    op.create_index('ix_talent_need_shares_lgcode', 'talent_need_shares', ['lgcode'])
    op.create_table('talent_engagements',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('need_id', sa.String(length=32), nullable=False),
    sa.Column('specialist_id', sa.String(length=32), nullable=False),
    sa.Column('start_month', sa.String(length=7), nullable=False),
    sa.Column('end_month', sa.String(length=7), nullable=False),
    sa.Column('ended_month', sa.String(length=7), nullable=True),
    sa.Column('days', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('offered_by', sa.String(length=32), nullable=False),
    sa.Column('offered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_talent_engagements'))
    )
    op.create_index(op.f('ix_talent_engagements_need_id'), 'talent_engagements', ['need_id'])
    op.create_index(op.f('ix_talent_engagements_specialist_id'), 'talent_engagements',
                    ['specialist_id'])
    op.create_table('talent_reports',
    sa.Column('engagement_id', sa.String(length=32), nullable=False),
    sa.Column('month', sa.String(length=7), nullable=False),
    sa.Column('days', sa.JSON(), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('engagement_id', 'month', name=op.f('pk_talent_reports'))
    )
    op.create_table('talent_evaluations',
    sa.Column('engagement_id', sa.String(length=32), nullable=False),
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('rating', sa.Integer(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('by_staff', sa.String(length=32), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('engagement_id', 'lgcode', name=op.f('pk_talent_evaluations'))
    )
    op.bulk_insert(skills, [{"code": c, "name_ja": ja, "name_en": en, "active": True}
                            for c, ja, en in SKILLS])
    if op.get_bind().dialect.name == "postgresql":
        role = os.environ.get("KIBAN_APP_ROLE", "kiban_app")
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON {', '.join(TABLES)} TO {role}")


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)

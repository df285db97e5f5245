"""Resident-tax municipal settings (issue 4 part 2): 級地, 指定都市 and ordinance rates per
municipality and fiscal year. Public facts (ordinances are promulgated), not personal data: a
plain table keyed by lgcode + fiscal_year, no partitions or row policies; the service lets
only a municipality's own 税務担当 change its row.

Revision ID: 0007
Revises: 0006
"""

import os

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('tax_settings',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('fiscal_year', sa.Integer(), nullable=False),
    sa.Column('grade', sa.String(length=1), nullable=False),
    sa.Column('designated_city', sa.Boolean(), nullable=False),
    sa.Column('municipal_income_rate', sa.String(length=10), nullable=False),
    sa.Column('prefectural_income_rate', sa.String(length=10), nullable=False),
    sa.Column('municipal_per_capita', sa.Integer(), nullable=False),
    sa.Column('prefectural_per_capita', sa.Integer(), nullable=False),
    sa.Column('ordinance_name', sa.String(length=200), nullable=True),
    sa.Column('ordinance_promulgated_on', sa.Date(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'fiscal_year', name=op.f('pk_tax_settings'))
    )
    if op.get_bind().dialect.name == "postgresql":
        role = os.environ.get("KIBAN_APP_ROLE", "kiban_app")
        op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON tax_settings TO {role}")


def downgrade() -> None:
    op.drop_table('tax_settings')

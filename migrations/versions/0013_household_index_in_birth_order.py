"""Registry: the household index also orders by birth date, so a household's members are read
from it in order (SQLite otherwise walked the municipality's birth-date index: 34 ms a
certificate among 20,000 residents).

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_residents_household', table_name='residents')
    op.create_index('ix_residents_household', 'residents', ['lgcode', 'household_id', 'birth_date'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_residents_household', table_name='residents')
    op.create_index('ix_residents_household', 'residents', ['lgcode', 'household_id'], unique=False)

"""Assistant (issue 10): row-level security for the tables that hold what residents typed or
did: unanswered questions (free text, which can contain personal data) and answer feedback.
Keyed by 地方公共団体コード as every personal-data table (the policy of 0012); the FAQs, the
shared bank, adoptions, settings, usage counters and the vector cache stay public.

The tables are not re-created hash-partitioned: they are small (a row per hand-off), and
converting a table with rows to a partitioned one means copying it; RLS is what keeps one
municipality from reading another's questions.

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

CURRENT = "current_setting('kiban.lgcode', true)"
TABLES = ("assist_unanswered", "assist_feedback")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite: every store query names the municipality
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} "
                   f"USING (lgcode = {CURRENT}) WITH CHECK (lgcode = {CURRENT})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in reversed(TABLES):
        op.execute(f"DROP POLICY IF EXISTS tenant_isolation ON {table}")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")

"""Annual assessment of the individual resident tax (issue 4 parts 5-7): income records, their
imports and bad lines, assessments and their versions (更正 history), option sets, runs and the
job queue. On PostgreSQL the personal-data tables are hash-partitioned by 地方公共団体コード and
guarded by row-level security, like the registry's (0001, 0004); runs, option sets and jobs hold
counts and id ranges only (a worker sees every municipality's queue).

Revision ID: 0008
Revises: 0007
"""

import os

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

PARTITIONS = 8  # as 0001
TENANT_TABLES = ("tax_income_records", "tax_imports", "tax_import_errors", "tax_assessments",
                 "tax_assessment_versions")
PLAIN_TABLES = ("tax_option_sets", "tax_runs", "tax_jobs")
CURRENT = "current_setting('kiban.lgcode', true)"
FIGURES = ("total", "income_levy_municipal", "income_levy_prefectural", "per_capita_municipal",
           "per_capita_prefectural", "forest_environment_tax", "taxable_income", "total_income")


def upgrade() -> None:
    op.create_table('tax_income_records',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('fiscal_year', sa.Integer(), nullable=False),
    sa.Column('record_type', sa.String(length=10), nullable=False),
    sa.Column('payer_number', sa.String(length=20), nullable=False),
    sa.Column('record_id', sa.String(length=40), nullable=False),
    sa.Column('payer_name', sa.String(length=200), nullable=False),
    sa.Column('resident_id', sa.String(length=32), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.String(length=32), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'id', name=op.f('pk_tax_income_records')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_index('ix_tax_income_records_resident', 'tax_income_records',
                    ['lgcode', 'fiscal_year', 'resident_id'], unique=False)
    op.create_table('tax_imports',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('fiscal_year', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('lines', sa.Integer(), nullable=False),
    sa.Column('added', sa.Integer(), nullable=False),
    sa.Column('corrected', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('rejected', sa.Integer(), nullable=False),
    sa.Column('imported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'id', name=op.f('pk_tax_imports')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_table('tax_import_errors',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('import_id', sa.String(length=32), nullable=False),
    sa.Column('line', sa.Integer(), nullable=False),
    sa.Column('fiscal_year', sa.Integer(), nullable=False),
    sa.Column('errors', sa.JSON(), nullable=False),
    sa.Column('raw', sa.JSON(), nullable=False),
    sa.Column('resolved', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'import_id', 'line', name=op.f('pk_tax_import_errors')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_table('tax_assessments',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('fiscal_year', sa.Integer(), nullable=False),
    sa.Column('resident_id', sa.String(length=32), nullable=True),
    sa.Column('taxpayer_number', sa.String(length=20), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('total', sa.BigInteger(), nullable=False),
    sa.Column('input_hash', sa.String(length=64), nullable=False),
    sa.Column('family_name', sa.String(length=100), nullable=False),
    sa.Column('given_name', sa.String(length=100), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'id', name=op.f('pk_tax_assessments')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_index('ix_tax_assessments_year', 'tax_assessments',
                    ['lgcode', 'fiscal_year', 'resident_id'], unique=False)
    op.create_table('tax_assessment_versions',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('assessment_id', sa.String(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('input', sa.JSON(), nullable=False),
    sa.Column('collection', sa.JSON(), nullable=False),
    sa.Column('options_key', sa.String(length=32), nullable=False),
    sa.Column('input_hash', sa.String(length=64), nullable=False),
    *(sa.Column(name, sa.BigInteger(), nullable=False) for name in FIGURES),
    sa.Column('non_taxable', sa.String(length=12), nullable=False),
    sa.Column('reason', sa.String(length=400), nullable=True),
    sa.Column('previous_total', sa.BigInteger(), nullable=True),
    sa.Column('run_id', sa.String(length=32), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'assessment_id', 'version',
                            name=op.f('pk_tax_assessment_versions')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_table('tax_option_sets',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('fiscal_year', sa.Integer(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'key', name=op.f('pk_tax_option_sets'))
    )
    op.create_table('tax_runs',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('fiscal_year', sa.Integer(), nullable=False),
    sa.Column('taxpayers', sa.Integer(), nullable=False),
    sa.Column('jobs', sa.Integer(), nullable=False),
    sa.Column('options_key', sa.String(length=32), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'id', name=op.f('pk_tax_runs'))
    )
    op.create_index('ix_tax_runs_year', 'tax_runs', ['lgcode', 'fiscal_year', 'started_at'],
                    unique=False)
    op.create_table('tax_jobs',
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('fiscal_year', sa.Integer(), nullable=False),
    sa.Column('first_id', sa.String(length=32), nullable=False),
    sa.Column('last_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('taxpayers', sa.Integer(), nullable=False),
    sa.Column('created', sa.Integer(), nullable=False),
    sa.Column('corrected', sa.Integer(), nullable=False),
    sa.Column('unchanged', sa.Integer(), nullable=False),
    sa.Column('failed', sa.Integer(), nullable=False),
    sa.Column('histogram', sa.JSON(), nullable=False),
    sa.Column('problems', sa.JSON(), nullable=False),
    sa.Column('worker', sa.String(length=64), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('run_id', 'seq', name=op.f('pk_tax_jobs'))
    )
    op.create_index('ix_tax_jobs_status', 'tax_jobs', ['status', 'lgcode'], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_tenancy()


def _postgresql_tenancy() -> None:
    role = os.environ.get("KIBAN_APP_ROLE", "kiban_app")
    for table in TENANT_TABLES:
        for i in range(PARTITIONS):
            op.execute(f"CREATE TABLE {table}_p{i} PARTITION OF {table} "
                       f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i})")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant_isolation ON {table} "
                   f"USING (lgcode = {CURRENT}) WITH CHECK (lgcode = {CURRENT})")
    # Versions and imports are history: written once, never changed or deleted.
    op.execute(f"GRANT SELECT, INSERT ON tax_assessment_versions, tax_imports, "
               f"tax_option_sets, tax_runs TO {role}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON tax_income_records, tax_import_errors, "
               f"tax_assessments, tax_jobs TO {role}")


def downgrade() -> None:
    op.drop_index('ix_tax_jobs_status', table_name='tax_jobs')
    op.drop_table('tax_jobs')
    op.drop_index('ix_tax_runs_year', table_name='tax_runs')
    op.drop_table('tax_runs')
    op.drop_table('tax_option_sets')
    op.drop_table('tax_assessment_versions')
    op.drop_index('ix_tax_assessments_year', table_name='tax_assessments')
    op.drop_table('tax_assessments')
    op.drop_table('tax_import_errors')
    op.drop_table('tax_imports')
    op.drop_index('ix_tax_income_records_resident', table_name='tax_income_records')
    op.drop_table('tax_income_records')

"""Open data (issue 8, first slice): datasets (one per municipality and standard schema),
their published versions (history) and each version's records. Public data, not personal:
one national list, not partitioned, no row policies.

Revision ID: 0006
Revises: 0005
"""

import os

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

TABLES = ("opendata_datasets", "opendata_versions", "opendata_records")


def upgrade() -> None:
    op.create_table('opendata_datasets',
    sa.Column('id', sa.String(length=80), nullable=False),
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('schema_name', sa.String(length=60), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('category', sa.String(length=40), nullable=False),
    sa.Column('current_version', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opendata_datasets'))
    )
    op.create_index('ix_opendata_datasets_lgcode', 'opendata_datasets',
                    ['lgcode', 'schema_name'], unique=True)
    op.create_table('opendata_versions',
    sa.Column('dataset_id', sa.String(length=80), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('schema_version', sa.String(length=20), nullable=False),
    sa.Column('columns', sa.Text(), nullable=False),
    sa.Column('extra_columns', sa.Text(), nullable=False),
    sa.Column('row_count', sa.Integer(), nullable=False),
    sa.Column('encoding', sa.String(length=20), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('published_by', sa.String(length=32), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['opendata_datasets.id'],
                            name=op.f('fk_opendata_versions_dataset_id_opendata_datasets')),
    sa.PrimaryKeyConstraint('dataset_id', 'version', name=op.f('pk_opendata_versions'))
    )
    op.create_table('opendata_records',
    sa.Column('dataset_id', sa.String(length=80), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('row', sa.Integer(), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id', 'version'],
                            ['opendata_versions.dataset_id', 'opendata_versions.version'],
                            name=op.f('fk_opendata_records_dataset_id_opendata_versions')),
    sa.PrimaryKeyConstraint('dataset_id', 'version', 'row', name=op.f('pk_opendata_records'))
    )
    if op.get_bind().dialect.name == "postgresql":
        role = os.environ.get("KIBAN_APP_ROLE", "kiban_app")
        # Published versions are history: never updated or deleted, only superseded.
        op.execute(f"GRANT SELECT, INSERT ON {', '.join(TABLES)} TO {role}")
        op.execute(f"GRANT UPDATE ON opendata_datasets TO {role}")


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)

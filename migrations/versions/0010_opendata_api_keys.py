"""Open data developer access (issue 8): data users' API keys (stored as SHA-256 hashes) and
their usage per day. Not municipal data: national, unpartitioned, no row policies.

Revision ID: 0010
Revises: 0009
"""

import os

import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('opendata_api_keys',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('contact', sa.String(length=200), nullable=False),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('per_minute', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opendata_api_keys'))
    )
    op.create_index('ix_opendata_api_keys_hash', 'opendata_api_keys', ['key_hash'], unique=True)
    op.create_table('opendata_api_usage',
    sa.Column('key_id', sa.String(length=32), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('requests', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['key_id'], ['opendata_api_keys.id'],
                            name=op.f('fk_opendata_api_usage_key_id_opendata_api_keys')),
    sa.PrimaryKeyConstraint('key_id', 'day', name=op.f('pk_opendata_api_usage'))
    )
    if op.get_bind().dialect.name == "postgresql":
        role = os.environ.get("KIBAN_APP_ROLE", "kiban_app")
        op.execute(f"GRANT SELECT, INSERT, UPDATE ON opendata_api_keys, opendata_api_usage TO {role}")


def downgrade() -> None:
    op.drop_table('opendata_api_usage')
    op.drop_table('opendata_api_keys')

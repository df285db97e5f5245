"""Platform and resident registry tables; on PostgreSQL, hash partitions by 地方公共団体コード,
row-level security policies and the application role's grants.

Revision ID: 0001
Revises:
"""

import os

import sqlalchemy as sa
from alembic import op

# Search keys compare bytewise on PostgreSQL, so prefix ranges use the b-tree.
SEARCH_KEY = sa.String(length=200).with_variant(sa.String(length=200, collation="C"), "postgresql")

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('certificates',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('serial', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('resident_ids', sa.JSON(), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('issued_by', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'serial', name=op.f('pk_certificates')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_table('change_events',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('occurred_on', sa.Date(), nullable=False),
    sa.Column('notified_on', sa.Date(), nullable=True),
    sa.Column('late_notice', sa.Boolean(), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('before', sa.JSON(), nullable=False),
    sa.Column('after', sa.JSON(), nullable=False),
    sa.Column('actor', sa.String(length=32), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('cancels', sa.String(length=32), nullable=True),
    sa.Column('cancelled_by', sa.String(length=32), nullable=True),
    sa.Column('ledger_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'id', name=op.f('pk_change_events')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_index('ix_change_events_recorded', 'change_events', ['lgcode', 'recorded_at'], unique=False)
    op.create_table('counters',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'name', name=op.f('pk_counters')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_table('event_subjects',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('resident_id', sa.String(length=32), nullable=False),
    sa.Column('event_id', sa.String(length=32), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'resident_id', 'event_id', name=op.f('pk_event_subjects')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_table('households',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('town_code', sa.String(length=12), nullable=False),
    sa.Column('banchi', sa.String(length=60), nullable=False),
    sa.Column('katagaki', sa.String(length=100), nullable=False),
    sa.Column('head_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'id', name=op.f('pk_households')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_index('ix_households_address', 'households', ['lgcode', 'town_code', 'banchi'], unique=False)
    op.create_table('idempotency_keys',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('response', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'key', name=op.f('pk_idempotency_keys')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_table('ledger_entries',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=64), nullable=False),
    sa.Column('subject', sa.String(length=64), nullable=False),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', sa.String(length=40), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'seq', name=op.f('pk_ledger_entries')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_table('ledger_heads',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', name=op.f('pk_ledger_heads')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_table('login_failures',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failures'))
    )
    op.create_index('ix_login_failures_key_at', 'login_failures', ['key', 'at'], unique=False)
    op.create_table('moveout_transfers',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('dest_lgcode', sa.String(length=6), nullable=False),
    sa.Column('resident_id', sa.String(length=32), nullable=False),
    sa.Column('juminhyo_code', sa.String(length=11), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('planned_on', sa.Date(), nullable=False),
    sa.Column('moved_in_on', sa.Date(), nullable=True),
    sa.PrimaryKeyConstraint('lgcode', 'id', name=op.f('pk_moveout_transfers')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_index('ix_moveout_transfers_dest', 'moveout_transfers', ['dest_lgcode', 'juminhyo_code'], unique=False)
    op.create_table('municipalities',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefecture', sa.String(length=20), nullable=False),
    sa.Column('name_kana', sa.String(length=200), nullable=False),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', name=op.f('pk_municipalities'))
    )
    op.create_table('residents',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('juminhyo_code', sa.String(length=11), nullable=False),
    sa.Column('my_number', sa.String(length=12), nullable=True),
    sa.Column('family_name', sa.String(length=100), nullable=False),
    sa.Column('given_name', sa.String(length=100), nullable=False),
    sa.Column('family_kana', sa.String(length=200), nullable=False),
    sa.Column('given_kana', sa.String(length=200), nullable=False),
    sa.Column('family_kana_key', SEARCH_KEY, nullable=False),
    sa.Column('given_kana_key', SEARCH_KEY, nullable=False),
    sa.Column('full_kana_key', SEARCH_KEY, nullable=False),
    sa.Column('family_name_key', SEARCH_KEY, nullable=False),
    sa.Column('given_name_key', SEARCH_KEY, nullable=False),
    sa.Column('full_name_key', SEARCH_KEY, nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('sex', sa.String(length=1), nullable=False),
    sa.Column('household_id', sa.String(length=32), nullable=False),
    sa.Column('relationship', sa.String(length=20), nullable=False),
    sa.Column('resident_since', sa.Date(), nullable=False),
    sa.Column('address_since', sa.Date(), nullable=False),
    sa.Column('notified_on', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('former_surname', sa.String(length=100), nullable=False),
    sa.Column('honseki', sa.String(length=200), nullable=False),
    sa.Column('hittosha', sa.String(length=100), nullable=False),
    sa.Column('previous_address', sa.String(length=300), nullable=False),
    sa.Column('foreign', sa.JSON(), nullable=True),
    sa.Column('removed_on', sa.Date(), nullable=True),
    sa.Column('removal_reason', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'id', name=op.f('pk_residents')),
    postgresql_partition_by='HASH (lgcode)'
    )
    op.create_index('ix_residents_birth_date', 'residents', ['lgcode', 'birth_date'], unique=False)
    op.create_index('ix_residents_full_kana', 'residents', ['lgcode', 'full_kana_key', 'id'], unique=False)
    op.create_index('ix_residents_full_name', 'residents', ['lgcode', 'full_name_key', 'id'], unique=False)
    op.create_index('ix_residents_given_kana', 'residents', ['lgcode', 'given_kana_key', 'id'], unique=False)
    op.create_index('ix_residents_given_name', 'residents', ['lgcode', 'given_name_key', 'id'], unique=False)
    op.create_index('ix_residents_household', 'residents', ['lgcode', 'household_id'], unique=False)
    op.create_index('uq_residents_lgcode_juminhyo_code', 'residents', ['lgcode', 'juminhyo_code'], unique=True,
                    sqlite_where=sa.text("status <> 'void'"), postgresql_where=sa.text("status <> 'void'"))
    op.create_table('sessions',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('staff_id', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('csrf_token', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_sessions'))
    )
    op.create_index(op.f('ix_sessions_staff_id'), 'sessions', ['staff_id'], unique=False)
    op.create_table('staff',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('lgcode', sa.String(length=6), nullable=True),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=100), nullable=False),
    sa.Column('department', sa.String(length=100), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('roles', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff')),
    sa.UniqueConstraint('username', name=op.f('uq_staff_username'))
    )
    op.create_table('towns',
    sa.Column('lgcode', sa.String(length=6), nullable=False),
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('name_kana', sa.String(length=200), nullable=False),
    sa.Column('postcode', sa.String(length=7), nullable=False),
    sa.PrimaryKeyConstraint('lgcode', 'code', name=op.f('pk_towns'))
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgresql_tenancy()


PARTITIONS = 8
# Personal-data tables: partitioned by lgcode and guarded by row-level security.
TENANT_TABLES = ("certificates", "change_events", "counters", "event_subjects", "households",
                 "idempotency_keys", "ledger_entries", "ledger_heads", "moveout_transfers",
                 "residents")
CURRENT = "current_setting('kiban.lgcode', true)"


def _postgresql_tenancy() -> None:
    role = os.environ.get("KIBAN_APP_ROLE", "kiban_app")
    op.execute(f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
            CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS;
          END IF;
        END $$;""")
    for table in TENANT_TABLES:
        for i in range(PARTITIONS):
            op.execute(f"CREATE TABLE {table}_p{i} PARTITION OF {table} "
                       f"FOR VALUES WITH (MODULUS {PARTITIONS}, REMAINDER {i})")
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        if table == "moveout_transfers":
            # The destination reads the move-out data sent ahead; only the departure writes.
            op.execute(f"CREATE POLICY read_own_or_addressed ON {table} FOR SELECT "
                       f"USING (lgcode = {CURRENT} OR dest_lgcode = {CURRENT})")
            op.execute(f"CREATE POLICY write_own ON {table} FOR ALL "
                       f"USING (lgcode = {CURRENT}) WITH CHECK (lgcode = {CURRENT})")
        else:
            op.execute(f"CREATE POLICY tenant_isolation ON {table} "
                       f"USING (lgcode = {CURRENT}) WITH CHECK (lgcode = {CURRENT})")
    # The application role owns nothing and may touch the parent tables only, never a
    # partition directly (partitions carry no policies of their own).
    op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    tables = ("towns", "staff", "sessions", "login_failures",
              *(t for t in TENANT_TABLES if t not in ("ledger_entries", "ledger_heads")))
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(tables)} TO {role}")
    # A municipality is never deleted by the application: its chain would vanish from audits.
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON municipalities TO {role}")
    # The ledger is append-only for the application; its head moves forward only.
    op.execute(f"GRANT SELECT, INSERT ON ledger_entries TO {role}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE ON ledger_heads TO {role}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}")


def downgrade() -> None:
    op.drop_table('towns')
    op.drop_table('staff')
    op.drop_index(op.f('ix_sessions_staff_id'), table_name='sessions')
    op.drop_table('sessions')
    op.drop_index('uq_residents_lgcode_juminhyo_code', table_name='residents')
    op.drop_index('ix_residents_household', table_name='residents')
    op.drop_index('ix_residents_given_name', table_name='residents')
    op.drop_index('ix_residents_given_kana', table_name='residents')
    op.drop_index('ix_residents_full_name', table_name='residents')
    op.drop_index('ix_residents_full_kana', table_name='residents')
    op.drop_index('ix_residents_birth_date', table_name='residents')
    op.drop_table('residents')
    op.drop_table('municipalities')
    op.drop_index('ix_moveout_transfers_dest', table_name='moveout_transfers')
    op.drop_table('moveout_transfers')
    op.drop_index('ix_login_failures_key_at', table_name='login_failures')
    op.drop_table('login_failures')
    op.drop_table('ledger_heads')
    op.drop_table('ledger_entries')
    op.drop_table('idempotency_keys')
    op.drop_index('ix_households_address', table_name='households')
    op.drop_table('households')
    op.drop_table('event_subjects')
    op.drop_table('counters')
    op.drop_index('ix_change_events_recorded', table_name='change_events')
    op.drop_table('change_events')
    op.drop_table('certificates')

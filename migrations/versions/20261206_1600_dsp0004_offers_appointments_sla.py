"""dispatch: offers to agencies, appointments, SLA targets and clocks

The request's statuses gain "offered" and "accepted" (the check constraint is replaced; no
column changes) and its accept clock (five nullable columns: requests taken before this
migration have no clock and never show on the SLA board). Offers, appointments, clocks and
their pauses are agency-owned: row-level security like every agency's rows. The SLA targets
table starts empty: the network defaults (dispatch/sla.py DEFAULT_MINUTES) apply until HQ sets
one.

Revision ID: dsp0004
Revises: dsp0003
Create Date: 2026-12-06 16:00:00

"""
import sqlalchemy as sa
from alembic import op

from portal import dbsecurity

OWNED = ("appointments", "dispatch_offers", "sla_clocks", "sla_pauses")
OLD_STATUSES = "status IN ('new', 'cancelled')"
NEW_STATUSES = "status IN ('new', 'offered', 'accepted', 'cancelled')"

revision = 'dsp0004'
down_revision = 'dsp0003'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sla_targets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_type', sa.String(length=16), nullable=False),
    sa.Column('product_line_id', sa.Integer(), nullable=True),
    sa.Column('milestone', sa.String(length=16), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.CheckConstraint("milestone IN ('answer', 'accept', 'appointment', 'arrival', 'diagnosis', 'completion')", name=op.f('ck_sla_targets_milestone_known')),
    sa.CheckConstraint("service_type IN ('phone', 'onsite', 'carry_in')", name=op.f('ck_sla_targets_service_type_known')),
    sa.CheckConstraint('minutes > 0 AND minutes <= 86400', name=op.f('ck_sla_targets_minutes_range')),
    sa.ForeignKeyConstraint(['product_line_id'], ['product_lines.id'], name=op.f('fk_sla_targets_product_line_id_product_lines'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'], name=op.f('fk_sla_targets_updated_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_targets'))
    )
    with op.batch_alter_table('sla_targets', schema=None) as batch_op:
        batch_op.create_index('uq_sla_targets_default', ['service_type', 'milestone'], unique=True, postgresql_where=sa.text('product_line_id IS NULL'), sqlite_where=sa.text('product_line_id IS NULL'))
        batch_op.create_index('uq_sla_targets_line', ['service_type', 'product_line_id', 'milestone'], unique=True, postgresql_where=sa.text('product_line_id IS NOT NULL'), sqlite_where=sa.text('product_line_id IS NOT NULL'))

    op.create_table('appointments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('work_order_id', sa.Integer(), nullable=False),
    sa.Column('engineer_id', sa.Integer(), nullable=False),
    sa.Column('window_from', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_to', sa.DateTime(timezone=True), nullable=False),
    sa.Column('booked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('booked_by_id', sa.Integer(), nullable=True),
    sa.Column('customer_later', sa.Boolean(), nullable=False),
    sa.Column('reason', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('superseded_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("reason IN ('', 'customer', 'agency')", name=op.f('ck_appointments_reason_known')),
    sa.CheckConstraint('window_to > window_from', name=op.f('ck_appointments_window_in_order')),
    sa.ForeignKeyConstraint(['agency_id', 'engineer_id'], ['engineers.agency_id', 'engineers.id'], name=op.f('fk_appointments_agency_id_engineer_id_engineers'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['agency_id', 'work_order_id'], ['work_orders.agency_id', 'work_orders.id'], name=op.f('fk_appointments_agency_id_work_order_id_work_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_appointments_agency_id_agencies'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['booked_by_id'], ['users.id'], name=op.f('fk_appointments_booked_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_appointments')),
    sa.UniqueConstraint('agency_id', 'id', name='uq_appointments_agency_id_id')
    )
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.create_index('ix_appointments_agency_id_window_from', ['agency_id', 'window_from'], unique=False)
        batch_op.create_index('uq_appointments_current', ['agency_id', 'work_order_id'], unique=True, postgresql_where=sa.text('superseded_at IS NULL'), sqlite_where=sa.text('superseded_at IS NULL'))

    op.create_table('dispatch_offers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('offered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('offered_by_id', sa.Integer(), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_by_id', sa.Integer(), nullable=True),
    sa.Column('refusal_reason', sa.String(length=16), nullable=False),
    sa.Column('refusal_note', sa.Text(), nullable=False),
    sa.Column('work_order_id', sa.Integer(), nullable=True),
    sa.Column('request_number', sa.String(length=20), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('province_id', sa.Integer(), nullable=False),
    sa.Column('city', sa.String(length=64), nullable=False),
    sa.Column('district', sa.String(length=64), nullable=False),
    sa.Column('product_line_id', sa.Integer(), nullable=False),
    sa.Column('product_model_id', sa.Integer(), nullable=False),
    sa.Column('service_type', sa.String(length=16), nullable=False),
    sa.Column('fault_description', sa.Text(), nullable=False),
    sa.Column('preferred_from', sa.DateTime(timezone=True), nullable=True),
    sa.Column('preferred_to', sa.DateTime(timezone=True), nullable=True),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.CheckConstraint("(status = 'accepted') = (work_order_id IS NOT NULL)", name=op.f('ck_dispatch_offers_accepted_has_order')),
    sa.CheckConstraint("(status = 'open') = (answered_at IS NULL)", name=op.f('ck_dispatch_offers_answered_when')),
    sa.CheckConstraint("service_type IN ('phone', 'onsite', 'carry_in')", name=op.f('ck_dispatch_offers_service_type_known')),
    sa.CheckConstraint("status <> 'refused' OR refusal_reason <> ''", name=op.f('ck_dispatch_offers_refused_has_reason')),
    sa.CheckConstraint("status IN ('open', 'accepted', 'refused', 'expired', 'withdrawn')", name=op.f('ck_dispatch_offers_status_known')),
    sa.CheckConstraint('expires_at > offered_at', name=op.f('ck_dispatch_offers_expires_after_offer')),
    sa.ForeignKeyConstraint(['agency_id', 'work_order_id'], ['work_orders.agency_id', 'work_orders.id'], name=op.f('fk_dispatch_offers_agency_id_work_order_id_work_orders'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_dispatch_offers_agency_id_agencies'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['answered_by_id'], ['users.id'], name=op.f('fk_dispatch_offers_answered_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['offered_by_id'], ['users.id'], name=op.f('fk_dispatch_offers_offered_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['product_line_id'], ['product_lines.id'], name=op.f('fk_dispatch_offers_product_line_id_product_lines'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['product_model_id'], ['product_models.id'], name=op.f('fk_dispatch_offers_product_model_id_product_models'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['province_id'], ['provinces.id'], name=op.f('fk_dispatch_offers_province_id_provinces'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['request_id'], ['service_requests.id'], name=op.f('fk_dispatch_offers_request_id_service_requests'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dispatch_offers')),
    sa.UniqueConstraint('agency_id', 'id', name='uq_dispatch_offers_agency_id_id')
    )
    with op.batch_alter_table('dispatch_offers', schema=None) as batch_op:
        batch_op.create_index('ix_dispatch_offers_agency_id_status', ['agency_id', 'status', 'expires_at'], unique=False)
        batch_op.create_index('ix_dispatch_offers_open_expires', ['expires_at'], unique=False, postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))
        batch_op.create_index('ix_dispatch_offers_request_id', ['request_id'], unique=False)
        batch_op.create_index('uq_dispatch_offers_open_request', ['request_id'], unique=True, postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))

    op.create_table('sla_clocks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('work_order_id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('milestone', sa.String(length=16), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('target_seconds', sa.Integer(), nullable=False),
    sa.Column('warn_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('escalate_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('met_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.CheckConstraint("milestone IN ('answer', 'accept', 'appointment', 'arrival', 'diagnosis', 'completion')", name=op.f('ck_sla_clocks_milestone_known')),
    sa.CheckConstraint('target_seconds > 0', name=op.f('ck_sla_clocks_target_positive')),
    sa.CheckConstraint('warn_at <= due_at AND due_at <= escalate_at', name=op.f('ck_sla_clocks_instants_ordered')),
    sa.ForeignKeyConstraint(['agency_id', 'work_order_id'], ['work_orders.agency_id', 'work_orders.id'], name=op.f('fk_sla_clocks_agency_id_work_order_id_work_orders'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_sla_clocks_agency_id_agencies'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['request_id'], ['service_requests.id'], name=op.f('fk_sla_clocks_request_id_service_requests'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_clocks')),
    sa.UniqueConstraint('agency_id', 'id', name='uq_sla_clocks_agency_id_id')
    )
    with op.batch_alter_table('sla_clocks', schema=None) as batch_op:
        batch_op.create_index('ix_sla_clocks_open_due', ['due_at'], unique=False, postgresql_where=sa.text('met_at IS NULL'), sqlite_where=sa.text('met_at IS NULL'))
        batch_op.create_index('ix_sla_clocks_request_id', ['request_id'], unique=False)
        batch_op.create_index('uq_sla_clocks_order_milestone', ['agency_id', 'work_order_id', 'milestone'], unique=True)

    op.create_table('sla_pauses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('clock_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=False),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_sla_pauses_ends_after_start')),
    sa.ForeignKeyConstraint(['agency_id', 'clock_id'], ['sla_clocks.agency_id', 'sla_clocks.id'], name=op.f('fk_sla_pauses_agency_id_clock_id_sla_clocks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_sla_pauses_agency_id_agencies'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sla_pauses')),
    sa.UniqueConstraint('agency_id', 'id', name='uq_sla_pauses_agency_id_id')
    )
    with op.batch_alter_table('sla_pauses', schema=None) as batch_op:
        batch_op.create_index('ix_sla_pauses_agency_id_clock_id', ['agency_id', 'clock_id'], unique=False)

    with op.batch_alter_table('service_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('accept_target_seconds', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('accept_warn_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('accept_due_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('accept_escalate_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_service_requests_accept_due', ['accept_due_at'], unique=False, postgresql_where=sa.text('accepted_at IS NULL'), sqlite_where=sa.text('accepted_at IS NULL'))
        batch_op.drop_constraint(op.f('ck_service_requests_status_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_service_requests_status_known'), NEW_STATUSES)
    for table in OWNED:
        dbsecurity.enable_tenant_rls(table)


def downgrade():
    for table in OWNED:
        dbsecurity.disable_tenant_rls(table)
    op.execute("UPDATE service_requests SET status = 'new' WHERE status IN ('offered', 'accepted')")
    with op.batch_alter_table('service_requests', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_service_requests_status_known'), type_='check')
        batch_op.create_check_constraint(op.f('ck_service_requests_status_known'), OLD_STATUSES)
        batch_op.drop_index('ix_service_requests_accept_due', postgresql_where=sa.text('accepted_at IS NULL'), sqlite_where=sa.text('accepted_at IS NULL'))
        batch_op.drop_column('accepted_at')
        batch_op.drop_column('accept_escalate_at')
        batch_op.drop_column('accept_due_at')
        batch_op.drop_column('accept_warn_at')
        batch_op.drop_column('accept_target_seconds')

    with op.batch_alter_table('sla_pauses', schema=None) as batch_op:
        batch_op.drop_index('ix_sla_pauses_agency_id_clock_id')

    op.drop_table('sla_pauses')
    with op.batch_alter_table('sla_clocks', schema=None) as batch_op:
        batch_op.drop_index('uq_sla_clocks_order_milestone')
        batch_op.drop_index('ix_sla_clocks_request_id')
        batch_op.drop_index('ix_sla_clocks_open_due', postgresql_where=sa.text('met_at IS NULL'), sqlite_where=sa.text('met_at IS NULL'))

    op.drop_table('sla_clocks')
    with op.batch_alter_table('dispatch_offers', schema=None) as batch_op:
        batch_op.drop_index('uq_dispatch_offers_open_request', postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))
        batch_op.drop_index('ix_dispatch_offers_request_id')
        batch_op.drop_index('ix_dispatch_offers_open_expires', postgresql_where=sa.text("status = 'open'"), sqlite_where=sa.text("status = 'open'"))
        batch_op.drop_index('ix_dispatch_offers_agency_id_status')

    op.drop_table('dispatch_offers')
    with op.batch_alter_table('appointments', schema=None) as batch_op:
        batch_op.drop_index('uq_appointments_current', postgresql_where=sa.text('superseded_at IS NULL'), sqlite_where=sa.text('superseded_at IS NULL'))
        batch_op.drop_index('ix_appointments_agency_id_window_from')

    op.drop_table('appointments')
    with op.batch_alter_table('sla_targets', schema=None) as batch_op:
        batch_op.drop_index('uq_sla_targets_line', postgresql_where=sa.text('product_line_id IS NOT NULL'), sqlite_where=sa.text('product_line_id IS NOT NULL'))
        batch_op.drop_index('uq_sla_targets_default', postgresql_where=sa.text('product_line_id IS NULL'), sqlite_where=sa.text('product_line_id IS NULL'))

    op.drop_table('sla_targets')

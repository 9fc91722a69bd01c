"""inbox: items, the e-mail outbox, preferences, workplace settings, announcements

Items, outbox rows and preferences belong to one recipient: row-level security shows an
account its own rows only (the whole-network scope, used by the write path's receivers, the
tick and the delivery worker, sees all).

Revision ID: inb0001
Revises: ten0002
Create Date: 2026-12-05 01:28:55.715973

"""
from alembic import op
import sqlalchemy as sa

from portal import dbsecurity


# revision identifiers, used by Alembic.
revision = 'inb0001'
down_revision = 'ten0002'
branch_labels = None
depends_on = None


RECIPIENT_TABLES = ("inbox_items", "mail_outbox", "inbox_preferences")


def upgrade():
    op.create_table('workplace_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('settlement_review_days', sa.Integer(), nullable=False),
    sa.Column('complaint_verdict_days', sa.Integer(), nullable=False),
    sa.Column('complaint_response_hours', sa.Integer(), nullable=False),
    sa.Column('digest_hour', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('complaint_response_hours BETWEEN 1 AND 720', name=op.f('ck_workplace_settings_response_hours_range')),
    sa.CheckConstraint('complaint_verdict_days BETWEEN 1 AND 90', name=op.f('ck_workplace_settings_verdict_days_range')),
    sa.CheckConstraint('digest_hour BETWEEN 0 AND 23', name=op.f('ck_workplace_settings_digest_hour_range')),
    sa.CheckConstraint('settlement_review_days BETWEEN 1 AND 90', name=op.f('ck_workplace_settings_review_days_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_workplace_settings'))
    )
    op.create_table('announcements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('audience', sa.String(length=16), nullable=False),
    sa.Column('audience_id', sa.Integer(), nullable=True),
    sa.Column('staff_too', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('requires_ack', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('ack_by', sa.Date(), nullable=True),
    sa.Column('recipient_count', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("(audience IN ('region', 'product_line')) = (audience_id IS NOT NULL)", name=op.f('ck_announcements_audience_id_when_needed')),
    sa.CheckConstraint("audience IN ('agencies', 'region', 'product_line', 'hq')", name=op.f('ck_announcements_audience_known')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_announcements_created_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_announcements'))
    )
    op.create_table('inbox_preferences',
    sa.Column('recipient_id', sa.Integer(), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.CheckConstraint("mode IN ('immediate', 'digest', 'off')", name=op.f('ck_inbox_preferences_mode_known')),
    sa.ForeignKeyConstraint(['recipient_id'], ['users.id'], name=op.f('fk_inbox_preferences_recipient_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('recipient_id', 'category', name=op.f('pk_inbox_preferences'))
    )
    op.create_table('inbox_items',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recipient_id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=True),
    sa.Column('event', sa.String(length=64), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('subject_type', sa.String(length=40), nullable=True),
    sa.Column('subject_id', sa.Integer(), nullable=True),
    sa.Column('label', sa.String(length=120), nullable=True),
    sa.Column('params', sa.JSON(), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.String(length=64), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('announcement_id', sa.Integer(), nullable=True),
    sa.Column('dedupe_key', sa.String(length=120), nullable=True),
    sa.Column('batch', sa.String(length=32), nullable=True),
    sa.CheckConstraint("kind IN ('task', 'notice')", name=op.f('ck_inbox_items_kind_known')),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_inbox_items_agency_id_agencies'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['announcement_id'], ['announcements.id'], name=op.f('fk_inbox_items_announcement_id_announcements'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recipient_id'], ['users.id'], name=op.f('fk_inbox_items_recipient_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_inbox_items')),
    sa.UniqueConstraint('recipient_id', 'dedupe_key', name='uq_inbox_items_recipient_dedupe')
    )
    with op.batch_alter_table('inbox_items', schema=None) as batch_op:
        batch_op.create_index('ix_inbox_items_announcement', ['announcement_id', 'agency_id'], unique=False)
        batch_op.create_index('ix_inbox_items_batch', ['batch'], unique=False)
        batch_op.create_index('ix_inbox_items_recipient_created', ['recipient_id', 'created_at'], unique=False)
        batch_op.create_index('ix_inbox_items_recipient_open', ['recipient_id', 'closed_at', 'due_at'], unique=False)
        batch_op.create_index('ix_inbox_items_subject', ['subject_type', 'subject_id'], unique=False)

    op.create_table('mail_outbox',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recipient_id', sa.Integer(), nullable=False),
    sa.Column('agency_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('item_id', sa.Integer(), nullable=True),
    sa.Column('digest_day', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('message_id', sa.String(length=200), nullable=True),
    sa.Column('to_address', sa.String(length=254), nullable=True),
    sa.Column('subject', sa.String(length=250), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claim', sa.String(length=16), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('item', 'digest')", name=op.f('ck_mail_outbox_kind_known')),
    sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_mail_outbox_agency_id_agencies'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['item_id'], ['inbox_items.id'], name=op.f('fk_mail_outbox_item_id_inbox_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recipient_id'], ['users.id'], name=op.f('fk_mail_outbox_recipient_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_outbox')),
    sa.UniqueConstraint('recipient_id', 'digest_day', name='uq_mail_outbox_one_digest_a_day')
    )
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.create_index('ix_mail_outbox_recipient_created', ['recipient_id', 'created_at'], unique=False)
        batch_op.create_index('ix_mail_outbox_status_next', ['status', 'next_attempt_at'], unique=False)

    for table in RECIPIENT_TABLES:
        dbsecurity.enable_recipient_rls(table)
    op.execute("INSERT INTO workplace_settings (id, settlement_review_days, "
               "complaint_verdict_days, complaint_response_hours, digest_hour, version, "
               "updated_at) VALUES (1, 5, 7, 48, 18, 1, CURRENT_TIMESTAMP)")


def downgrade():
    for table in RECIPIENT_TABLES:
        dbsecurity.disable_tenant_rls(table)
    with op.batch_alter_table('mail_outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_mail_outbox_status_next')
        batch_op.drop_index('ix_mail_outbox_recipient_created')

    op.drop_table('mail_outbox')
    with op.batch_alter_table('inbox_items', schema=None) as batch_op:
        batch_op.drop_index('ix_inbox_items_subject')
        batch_op.drop_index('ix_inbox_items_recipient_open')
        batch_op.drop_index('ix_inbox_items_recipient_created')
        batch_op.drop_index('ix_inbox_items_batch')
        batch_op.drop_index('ix_inbox_items_announcement')

    op.drop_table('inbox_items')
    op.drop_table('inbox_preferences')
    op.drop_table('announcements')
    op.drop_table('workplace_settings')

"""automations: triggers, steps, events, enrollments and step executions

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 02:20:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade():
    op.create_table(
        'automations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('status', sa.Enum('active', 'paused', name='automationstatus', native_enum=False, length=32),
                  nullable=False),
        sa.Column('trigger', sa.Enum('subscribed', 'confirmed', 'attribute_changed', 'api_event', 'date',
                                     name='triggerkind', native_enum=False, length=32), nullable=False),
        sa.Column('trigger_key', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_automations')),
    )
    op.create_table(
        'automation_steps',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('automation_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('kind', sa.Enum('send', 'wait', 'branch', name='stepkind', native_enum=False, length=32),
                  nullable=False),
        sa.Column('params', sa.JSON(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['automation_id'], ['automations.id'],
                                name=op.f('fk_automation_steps_automation_id_automations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_steps')),
    )
    op.create_index('ix_automation_steps_automation_position', 'automation_steps', ['automation_id', 'position'])
    op.create_table(
        'automation_events',
        sa.Column('id', BIG, nullable=False),
        sa.Column('kind', sa.Enum('subscribed', 'confirmed', 'attribute_changed', 'api_event', 'date',
                                  name='triggerkind', native_enum=False, length=32), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('subscriber_id', sa.Integer(), nullable=False),
        sa.Column('idempotency_key', sa.String(length=200), nullable=True),
        sa.Column('payload', sa.JSON(), nullable=False),
        sa.Column('processed', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'],
                                name=op.f('fk_automation_events_subscriber_id_subscribers'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_events')),
        sa.UniqueConstraint('idempotency_key', name='uq_automation_events_idempotency_key'),
    )
    op.create_index('ix_automation_events_processed_id', 'automation_events', ['processed', 'id'])
    op.create_index(op.f('ix_automation_events_subscriber_id'), 'automation_events', ['subscriber_id'])
    op.create_table(
        'automation_enrollments',
        sa.Column('id', BIG, nullable=False),
        sa.Column('automation_id', sa.Integer(), nullable=False),
        sa.Column('subscriber_id', sa.Integer(), nullable=False),
        sa.Column('scope', sa.String(length=40), nullable=False),
        sa.Column('event_id', BIG, nullable=True),
        sa.Column('current_step_id', sa.Integer(), nullable=True),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('next_run_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('state', sa.Enum('active', 'completed', 'exited', name='enrollmentstate', native_enum=False,
                                   length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['automation_id'], ['automations.id'],
                                name=op.f('fk_automation_enrollments_automation_id_automations'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['current_step_id'], ['automation_steps.id'],
                                name=op.f('fk_automation_enrollments_current_step_id_automation_steps'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'],
                                name=op.f('fk_automation_enrollments_subscriber_id_subscribers'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_enrollments')),
        sa.UniqueConstraint('automation_id', 'subscriber_id', 'scope', name='uq_automation_enrollments_once'),
    )
    op.create_index('ix_automation_enrollments_state_next_run', 'automation_enrollments', ['state', 'next_run_at'])
    op.create_index('ix_automation_enrollments_automation_state', 'automation_enrollments',
                    ['automation_id', 'state'])
    op.create_index(op.f('ix_automation_enrollments_subscriber_id'), 'automation_enrollments', ['subscriber_id'])
    op.create_table(
        'automation_step_executions',
        sa.Column('id', BIG, nullable=False),
        sa.Column('enrollment_id', BIG, nullable=False),
        sa.Column('step_id', sa.Integer(), nullable=False),
        sa.Column('step_version', sa.Integer(), nullable=False),
        sa.Column('outcome', sa.String(length=40), nullable=False),
        sa.Column('notification_id', BIG, nullable=True),
        sa.Column('detail', sa.String(length=500), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['enrollment_id'], ['automation_enrollments.id'],
                                name=op.f('fk_automation_step_executions_enrollment_id_automation_enrollments'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['step_id'], ['automation_steps.id'],
                                name=op.f('fk_automation_step_executions_step_id_automation_steps'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_step_executions')),
        sa.UniqueConstraint('enrollment_id', 'step_id', name='uq_automation_step_executions_once'),
    )
    op.create_index('ix_automation_step_executions_step', 'automation_step_executions', ['step_id'])


def downgrade():
    op.drop_table('automation_step_executions')
    op.drop_table('automation_enrollments')
    op.drop_table('automation_events')
    op.drop_table('automation_steps')
    op.drop_table('automations')

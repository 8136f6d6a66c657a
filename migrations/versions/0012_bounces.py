"""bounces: reports of bounces and complaints, and the campaigns' bounced/complained totals

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 20:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    big_id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
    op.create_table(
        'bounces',
        sa.Column('id', big_id, nullable=False),
        sa.Column('type', sa.Enum('hard', 'soft', 'complaint', name='bouncetype', native_enum=False, length=32),
                  nullable=False),
        sa.Column('source', sa.String(length=20), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('subscriber_id', sa.Integer(), nullable=True),
        sa.Column('campaign_id', sa.Integer(), nullable=True),
        sa.Column('delivery_id', big_id, nullable=True),
        sa.Column('notification_id', sa.Integer(), nullable=True),
        sa.Column('status_code', sa.String(length=16), nullable=False),
        sa.Column('diagnostic', sa.String(length=500), nullable=False),
        sa.Column('event_id', sa.String(length=200), nullable=False),
        sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_bounces_campaign_id_campaigns'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'],
                                name=op.f('fk_bounces_subscriber_id_subscribers'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_bounces')),
    )
    with op.batch_alter_table('bounces', schema=None) as batch_op:
        batch_op.create_index('uq_bounces_source_event_id', ['source', 'event_id'], unique=True,
                              postgresql_where=sa.text("event_id <> ''"), sqlite_where=sa.text("event_id <> ''"))
        batch_op.create_index('ix_bounces_delivery_id', ['delivery_id'], unique=False)
        batch_op.create_index('ix_bounces_subscriber_id_id', ['subscriber_id', 'id'], unique=False)
        batch_op.create_index('ix_bounces_campaign_id_type', ['campaign_id', 'type'], unique=False)
        batch_op.create_index('ix_bounces_created_at_id', ['created_at', 'id'], unique=False)
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bounced', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('complained', sa.Integer(), server_default='0', nullable=False))


def downgrade():
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('complained')
        batch_op.drop_column('bounced')
    op.drop_table('bounces')

"""engagement: campaign tracking mode, links, pre-aggregated counts, individual events

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-06 17:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

KIND = sa.Enum('open', 'click', name='engagementkind', native_enum=False, length=32)


def upgrade():
    # Campaigns sent before tracking existed were sent untracked: 'off', not the new default.
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tracking', sa.Enum('off', 'anonymous', 'individual', name='tracking',
                                                          native_enum=False, length=32),
                                      server_default='off', nullable=False))
    op.create_table(
        'campaign_links',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('campaign_id', 'url', name='uq_campaign_links_campaign_url'),
    )
    op.create_table(
        'engagement_counts',
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('kind', KIND, nullable=False),
        sa.Column('link_id', sa.Integer(), nullable=False),
        sa.Column('machine', sa.Boolean(), nullable=False),
        sa.Column('hour', sa.DateTime(timezone=True), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('campaign_id', 'kind', 'link_id', 'machine', 'hour'),
    )
    op.create_table(
        'engagement_unique_counts',
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('kind', KIND, nullable=False),
        sa.Column('link_id', sa.Integer(), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('campaign_id', 'kind', 'link_id'),
    )
    op.create_table(
        'engagement_uniques',
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('kind', KIND, nullable=False),
        sa.Column('link_id', sa.Integer(), nullable=False),
        sa.Column('subscriber_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('campaign_id', 'kind', 'link_id', 'subscriber_id'),
    )
    with op.batch_alter_table('engagement_uniques', schema=None) as batch_op:
        batch_op.create_index('ix_engagement_uniques_subscriber_id', ['subscriber_id'], unique=False)
    op.create_table(
        'engagement_events',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('subscriber_id', sa.Integer(), nullable=False),
        sa.Column('link_id', sa.Integer(), nullable=True),
        sa.Column('kind', KIND, nullable=False),
        sa.Column('machine', sa.Boolean(), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['link_id'], ['campaign_links.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('engagement_events', schema=None) as batch_op:
        batch_op.create_index('ix_engagement_events_campaign_id', ['campaign_id', 'id'], unique=False)
        batch_op.create_index('ix_engagement_events_subscriber_id', ['subscriber_id', 'id'], unique=False)
    op.create_table(
        'engagement_batches',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('events', sa.Integer(), nullable=False),
        sa.Column('flushed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade():
    op.drop_table('engagement_batches')
    with op.batch_alter_table('engagement_events', schema=None) as batch_op:
        batch_op.drop_index('ix_engagement_events_subscriber_id')
        batch_op.drop_index('ix_engagement_events_campaign_id')
    op.drop_table('engagement_events')
    with op.batch_alter_table('engagement_uniques', schema=None) as batch_op:
        batch_op.drop_index('ix_engagement_uniques_subscriber_id')
    op.drop_table('engagement_uniques')
    op.drop_table('engagement_unique_counts')
    op.drop_table('engagement_counts')
    op.drop_table('campaign_links')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('tracking')

"""engagement breakdowns: machine events per reason, and events per recipient mail domain

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 17:50:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

KIND = sa.Enum('open', 'click', name='engagementkind', native_enum=False, length=32)


def upgrade():
    # Small counter tables of their own: the reason and the domain are read only as campaign
    # totals, so they stay out of the hourly per-link key every flush upserts.
    op.create_table(
        'engagement_reason_counts',
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('kind', KIND, nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('campaign_id', 'kind', 'reason'),
    )
    op.create_table(
        'engagement_domain_counts',
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('kind', KIND, nullable=False),
        sa.Column('domain', sa.String(length=255), nullable=False),
        sa.Column('machine', sa.Boolean(), nullable=False),
        sa.Column('count', sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('campaign_id', 'kind', 'domain', 'machine'),
    )


def downgrade():
    op.drop_table('engagement_domain_counts')
    op.drop_table('engagement_reason_counts')

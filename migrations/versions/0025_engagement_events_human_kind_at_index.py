"""engagement_events (kind, at, subscriber_id) of human events: segments' engagement conditions

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 09:10:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0025'
down_revision = '0024'
branch_labels = None
depends_on = None


def upgrade():
    # "Opened any campaign in the last 30 days" read every event (a sequential scan, 100,000 rows
    # at the bench's 1M subscribers, and every event ever recorded on a real instance) to find
    # the few thousand humans of the window; with this index it reads the window alone, from
    # the index (bench/README.md "Segment counts"). Partial: segments never read machine events.
    op.create_index('ix_engagement_events_human_kind_at', 'engagement_events', ['kind', 'at', 'subscriber_id'],
                    postgresql_where=sa.text('machine IS false'), sqlite_where=sa.text('machine IS 0'))


def downgrade():
    op.drop_index('ix_engagement_events_human_kind_at', table_name='engagement_events')

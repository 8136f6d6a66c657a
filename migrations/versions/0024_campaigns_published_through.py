"""campaigns.published_through / published_at: a window's fresh rows are published by a cursor, not a write each

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07 09:20:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0024'
down_revision = '0023'
branch_labels = None
depends_on = None


def upgrade():
    # Issue 19: the publisher no longer moves each fresh delivery row pending -> queued; it records
    # the highest id it has published (and when) on the campaign, once a window.
    with op.batch_alter_table('campaigns') as batch_op:
        batch_op.add_column(sa.Column('published_through', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('published_at', sa.DateTime(timezone=True), nullable=True))
    # The publisher's due rows (status pending with a next_attempt_at) by probe: without it, every
    # window walked all of the campaign's pending rows (at the start of a big campaign, all fresh).
    due = "status = 'pending' AND next_attempt_at IS NOT NULL"
    op.create_index('ix_deliveries_campaign_due', 'deliveries', ['campaign_id', 'next_attempt_at'],
                    postgresql_where=sa.text(due), sqlite_where=sa.text(due))


def downgrade():
    op.drop_index('ix_deliveries_campaign_due', table_name='deliveries')
    with op.batch_alter_table('campaigns') as batch_op:
        batch_op.drop_column('published_at')
        batch_op.drop_column('published_through')

"""notification kind: one-off mail in the notifications ledger

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 17:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

KINDS = ('api', 'confirmation', 'manage_link', 'test_email', 'campaign_test')


def upgrade():
    # Every existing row came from the REST API: the server default fills them with 'api'.
    # The status column is a plain string (no CHECK constraint): 'cancelled' needs no change.
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.Enum(*KINDS, name='notificationkind', native_enum=False, length=32),
                                      server_default='api', nullable=False))
        batch_op.add_column(sa.Column('from_name', sa.String(length=200), server_default='', nullable=False))
        batch_op.add_column(sa.Column('from_email', sa.String(length=254), server_default='', nullable=False))
        batch_op.add_column(sa.Column('reply_to', sa.String(length=254), server_default='', nullable=False))
        batch_op.add_column(sa.Column('headers', sa.JSON(), server_default='[]', nullable=False))
        batch_op.create_index('ix_notifications_kind_id', ['kind', 'id'], unique=False)
        batch_op.create_index('ix_notifications_email', ['email'], unique=False)


def downgrade():
    # One-off mail had no ledger before this revision: its rows go, the API's stay.
    op.execute("DELETE FROM notifications WHERE kind <> 'api'")
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_email')
        batch_op.drop_index('ix_notifications_kind_id')
        batch_op.drop_column('headers')
        batch_op.drop_column('reply_to')
        batch_op.drop_column('from_email')
        batch_op.drop_column('from_name')
        batch_op.drop_column('kind')

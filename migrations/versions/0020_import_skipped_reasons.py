"""import reasons: how many rows an import did not add back because they had unsubscribed, and examples with why

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 02:40:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('left_lists', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('skipped', sa.JSON(), server_default='[]', nullable=False))


def downgrade():
    with op.batch_alter_table('import_jobs', schema=None) as batch_op:
        batch_op.drop_column('skipped')
        batch_op.drop_column('left_lists')

"""campaign resend: a campaign may be a resend of another, to its non-openers or non-clickers

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-06 18:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    # Both NULL for every existing campaign: none of them is a resend.
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resend_of_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('resend_to', sa.Enum('non_openers', 'non_clickers', name='resendto',
                                                           native_enum=False, length=32), nullable=True))
        batch_op.create_foreign_key(op.f('fk_campaigns_resend_of_id_campaigns'), 'campaigns', ['resend_of_id'],
                                    ['id'], ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('fk_campaigns_resend_of_id_campaigns'), type_='foreignkey')
        batch_op.drop_column('resend_to')
        batch_op.drop_column('resend_of_id')

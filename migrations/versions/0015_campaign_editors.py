"""campaign editors: a campaign's body format and editor source; saved campaign templates

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 23:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

FORMATS = ('html', 'markdown', 'richtext', 'visual')


def upgrade():
    # Every existing campaign was written as HTML.
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('body_format', sa.Enum(*FORMATS, name='bodyformat', native_enum=False,
                                                             length=32), server_default='html', nullable=False))
        batch_op.add_column(sa.Column('body_source', sa.Text(), server_default='', nullable=False))
    op.create_table(
        'campaign_templates',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('subject', sa.String(length=500), nullable=False),
        sa.Column('body_format', sa.Enum(*FORMATS, name='bodyformat', native_enum=False, length=32), nullable=False),
        sa.Column('body_source', sa.Text(), nullable=False),
        sa.Column('html', sa.Text(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_campaign_templates_created_by_id_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_templates')),
    )


def downgrade():
    op.drop_table('campaign_templates')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('body_source')
        batch_op.drop_column('body_format')

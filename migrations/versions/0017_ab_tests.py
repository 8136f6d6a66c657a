"""A/B tests: a campaign's variants, its test settings and winner, the variant of each delivery

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 02:10:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'ab_variants',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('label', sa.String(length=1), nullable=False),
        sa.Column('subject', sa.String(length=500), nullable=False),
        sa.Column('from_name', sa.String(length=200), server_default='', nullable=False),
        sa.Column('html', sa.Text(), server_default='', nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_ab_variants_campaign_id_campaigns'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ab_variants')),
        sa.UniqueConstraint('campaign_id', 'label', name='uq_ab_variants_campaign_label'),
    )
    op.create_index(op.f('ix_ab_variants_campaign_id'), 'ab_variants', ['campaign_id'], unique=False)
    # Every existing campaign: no test (share 0).
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ab_share', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('ab_metric', sa.Enum('opens', 'clicks', name='abmetric', native_enum=False,
                                                           length=32), server_default='opens', nullable=False))
        batch_op.add_column(sa.Column('ab_mode', sa.Enum('auto', 'manual', name='abmode', native_enum=False,
                                                         length=32), server_default='auto', nullable=False))
        batch_op.add_column(sa.Column('ab_wait', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('ab_winner', sa.String(length=1), nullable=True))
        batch_op.add_column(sa.Column('ab_decided_at', sa.DateTime(timezone=True), nullable=True))
    # Nullable, no default: adding it rewrites nothing on PostgreSQL (a big ledger stays online).
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('variant', sa.String(length=1), nullable=True))
        batch_op.add_column(sa.Column('ab_tested', sa.Boolean(), nullable=True))


def downgrade():
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('ab_tested')
        batch_op.drop_column('variant')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('ab_decided_at')
        batch_op.drop_column('ab_winner')
        batch_op.drop_column('ab_wait')
        batch_op.drop_column('ab_mode')
        batch_op.drop_column('ab_metric')
        batch_op.drop_column('ab_share')
    op.drop_index(op.f('ix_ab_variants_campaign_id'), table_name='ab_variants')
    op.drop_table('ab_variants')

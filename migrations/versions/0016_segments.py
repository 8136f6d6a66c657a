"""segments: saved rules over subscribers, campaigns that target them, a GIN index on attributes

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 23:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'segments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('rules', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_segments')),
    )
    op.create_table(
        'campaign_segments',
        sa.Column('campaign_id', sa.Integer(), nullable=False),
        sa.Column('segment_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'],
                                name=op.f('fk_campaign_segments_campaign_id_campaigns'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['segment_id'], ['segments.id'],
                                name=op.f('fk_campaign_segments_segment_id_segments'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('campaign_id', 'segment_id', name=op.f('pk_campaign_segments')),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Attribute conditions compile to `attributes @> ...` (equals) and `attributes ? key` (is set)
        # on PostgreSQL, which this index answers without reading every subscriber.
        op.execute("CREATE INDEX ix_subscribers_attributes_gin ON subscribers USING gin (attributes)")


def downgrade():
    op.execute("DROP INDEX IF EXISTS ix_subscribers_attributes_gin")
    op.drop_table('campaign_segments')
    op.drop_table('segments')

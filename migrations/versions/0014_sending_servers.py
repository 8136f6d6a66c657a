"""sending servers: SMTP servers in pools with their own login and limits; a campaign's pool

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 20:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'sending_servers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('pool', sa.String(length=64), nullable=False),
        sa.Column('host', sa.String(length=255), nullable=False),
        sa.Column('port', sa.Integer(), nullable=False),
        sa.Column('tls', sa.String(length=16), nullable=False),
        sa.Column('username', sa.String(length=255), nullable=False),
        sa.Column('password_encrypted', sa.String(length=1000), nullable=False),
        sa.Column('per_second', sa.Float(), nullable=False),
        sa.Column('per_hour', sa.Integer(), nullable=False),
        sa.Column('per_day', sa.Integer(), nullable=False),
        sa.Column('enabled', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sending_servers')),
        sa.UniqueConstraint('name', name='uq_sending_servers_name'),
    )
    with op.batch_alter_table('sending_servers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sending_servers_pool'), ['pool'], unique=False)
    # Every existing campaign keeps going out through the Settings page's server.
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pool', sa.String(length=64), server_default='default', nullable=False))


def downgrade():
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_column('pool')
    with op.batch_alter_table('sending_servers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sending_servers_pool'))
    op.drop_table('sending_servers')

"""dkim keys: per sending domain, selector and algorithm, the private key encrypted

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 20:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'dkim_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('domain', sa.String(length=253), nullable=False),
        sa.Column('selector', sa.String(length=63), nullable=False),
        sa.Column('algorithm', sa.Enum('rsa', 'ed25519', name='dkimalgorithm', native_enum=False, length=32),
                  nullable=False),
        sa.Column('bits', sa.Integer(), nullable=False),
        sa.Column('private_key', sa.Text(), nullable=False),
        sa.Column('public_key', sa.Text(), nullable=False),
        sa.Column('status', sa.Enum('pending', 'active', 'retired', name='dkimkeystatus', native_enum=False,
                                    length=32), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('activated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_dkim_keys_created_by_id_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_dkim_keys')),
        sa.UniqueConstraint('domain', 'selector', name=op.f('uq_dkim_keys_domain')),
    )
    with op.batch_alter_table('dkim_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dkim_keys_domain'), ['domain'], unique=False)


def downgrade():
    with op.batch_alter_table('dkim_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dkim_keys_domain'))
    op.drop_table('dkim_keys')

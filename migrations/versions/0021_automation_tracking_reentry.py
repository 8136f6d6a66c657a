"""automations: tracked emails (links, opens and clicks per enrollment), re-entry, reordered steps

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 05:40:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTIVE_REENTRY = "state = 'active' AND scope LIKE 'r:%'"


def upgrade():
    with op.batch_alter_table('automations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reentry', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('reentry_gap_minutes', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('tracking', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('automation_enrollments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('done_ahead', sa.JSON(), server_default='[]', nullable=False))
    op.create_index('uq_automation_enrollments_reentry_active', 'automation_enrollments',
                    ['automation_id', 'subscriber_id'], unique=True,
                    postgresql_where=sa.text(ACTIVE_REENTRY), sqlite_where=sa.text(ACTIVE_REENTRY))
    op.create_table(
        'automation_links',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('step_id', sa.Integer(), nullable=False),
        sa.Column('url', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['step_id'], ['automation_steps.id'],
                                name=op.f('fk_automation_links_step_id_automation_steps'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_links')),
        sa.UniqueConstraint('step_id', 'url', name='uq_automation_links_step_url'),
    )
    op.create_table(
        'automation_engagements',
        sa.Column('enrollment_id', BIG, nullable=False),
        sa.Column('step_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.Enum('open', 'click', name='engagementkind', native_enum=False, length=32),
                  nullable=False),
        sa.Column('machine', sa.Boolean(), nullable=False),
        sa.Column('reason', sa.String(length=32), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['enrollment_id'], ['automation_enrollments.id'],
                                name=op.f('fk_automation_engagements_enrollment_id_automation_enrollments'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['step_id'], ['automation_steps.id'],
                                name=op.f('fk_automation_engagements_step_id_automation_steps'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('enrollment_id', 'step_id', 'kind', 'machine', name=op.f('pk_automation_engagements')),
    )
    op.create_index('ix_automation_engagements_step', 'automation_engagements', ['step_id', 'kind', 'machine'])


def downgrade():
    op.drop_index('ix_automation_engagements_step', table_name='automation_engagements')
    op.drop_table('automation_engagements')
    op.drop_table('automation_links')
    op.drop_index('uq_automation_enrollments_reentry_active', table_name='automation_enrollments')
    with op.batch_alter_table('automation_enrollments', schema=None) as batch_op:
        batch_op.drop_column('done_ahead')
    with op.batch_alter_table('automations', schema=None) as batch_op:
        batch_op.drop_column('tracking')
        batch_op.drop_column('reentry_gap_minutes')
        batch_op.drop_column('reentry')

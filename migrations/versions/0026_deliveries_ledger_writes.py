"""deliveries: drop ix_deliveries_campaign_id_id; deliveries.task_id (a send recorded onto its row writes no attempt row)

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 12:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0026'
down_revision = '0025'
branch_labels = None
depends_on = None


def upgrade():
    # Issue 19: no update of a delivery row is HOT (each changes `status`, which is indexed), so
    # every full index of `deliveries` gets one entry at the snapshot's INSERT, the fence and the
    # record. (campaign_id, id) served one query alone, a campaign's ledger in id order across
    # every status (API pages); it now reads (campaign_id, status, id) once per status, merged
    # (bench/README.md "PostgreSQL per message: the indexes").
    op.drop_index('ix_deliveries_campaign_id_id', table_name='deliveries')
    # The batch's Celery task id on the row: a send recorded onto its row is then the row itself
    # (attempt, time, answer, worker, task), and needs no delivery_attempts row besides (one row
    # and two index entries a message). A constant default: no table rewrite on PostgreSQL.
    with op.batch_alter_table('deliveries') as batch_op:
        batch_op.add_column(sa.Column('task_id', sa.String(length=64), nullable=False, server_default=''))


def downgrade():
    # The code before 0026 reads a delivery's history from delivery_attempts alone: store the
    # sends that were recorded onto their rows (send_log._recorded_send's rule) before task_id goes.
    op.execute(
        "INSERT INTO delivery_attempts (delivery_id, attempt, status, at, smtp_code, smtp_message, worker, task_id) "
        "SELECT d.id, d.attempts, 'sent', COALESCE(d.sent_at, d.updated_at), d.smtp_code, d.smtp_message, d.worker, "
        "d.task_id FROM deliveries d WHERE d.status = 'sent' AND NOT EXISTS (SELECT 1 FROM delivery_attempts a "
        "WHERE a.delivery_id = d.id AND a.status = 'sent' AND a.attempt = d.attempts "
        "AND a.smtp_message = d.smtp_message)")
    with op.batch_alter_table('deliveries') as batch_op:
        batch_op.drop_column('task_id')
    op.create_index('ix_deliveries_campaign_id_id', 'deliveries', ['campaign_id', 'id'], unique=False)

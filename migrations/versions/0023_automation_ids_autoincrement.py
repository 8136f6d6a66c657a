"""automation enrollments and steps: AUTOINCREMENT ids on SQLite (a no-op on PostgreSQL)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07 09:20:00.000000

An email of an automation's send step is keyed `automation:<enrollment id>:<step id>` in the
notifications ledger. SQLite's plain rowid hands out the highest id again once that row is deleted,
so a new enrollment (or step) could take a deleted one's id, meet the old notification's key and its
email would never go. AUTOINCREMENT never reuses an id; PostgreSQL's sequences never do either.

SQLite cannot add AUTOINCREMENT to a table, so the two tables are rebuilt (batch mode copies the
rows, indexes and constraints). Foreign keys are off while they are: dropping the old table would
otherwise cascade into the executions, links and engagements that point at it; they are checked
before they are turned back on.
"""
from alembic import op

# revision identifiers, used by Alembic.
revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

TABLES = ('automation_steps', 'automation_enrollments')


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    context = op.get_context()
    with context.autocommit_block():
        op.execute('PRAGMA foreign_keys=OFF')
    try:
        for table in TABLES:
            with op.batch_alter_table(table, recreate='always',
                                      table_kwargs={'sqlite_autoincrement': autoincrement}):
                pass
        broken = op.get_bind().exec_driver_sql('PRAGMA foreign_key_check').fetchall()
        if broken:
            raise RuntimeError(f'foreign keys broken by the rebuild: {broken[:5]}')
    finally:
        with context.autocommit_block():
            op.execute('PRAGMA foreign_keys=ON')


def upgrade():
    _rebuild(autoincrement=True)


def downgrade():
    _rebuild(autoincrement=False)

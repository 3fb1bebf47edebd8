"""outbox: mails queued in bulk keep their template context and are rendered when sent

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite changes a column's nullability by rebuilding the table.
    with op.batch_alter_table('outbox') as batch:
        batch.add_column(sa.Column('context', sa.JSON(), nullable=True))
        batch.alter_column('subject', existing_type=sa.String(length=500), nullable=True)
        batch.alter_column('body_text', existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    op.execute(
        "UPDATE outbox SET subject = '', body_text = '' WHERE subject IS NULL OR body_text IS NULL"
    )
    with op.batch_alter_table('outbox') as batch:
        batch.alter_column('body_text', existing_type=sa.Text(), nullable=False)
        batch.alter_column('subject', existing_type=sa.String(length=500), nullable=False)
        batch.drop_column('context')

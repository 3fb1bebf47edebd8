"""accompagnements: the mission index also holds period and hours (anomaly 6 reads it alone)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 19:30:00.000000
"""

from alembic import op


revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The new index starts with mission_id, so it serves every lookup the old one did.
    op.create_index(
        "ix_accompagnements_mission_load",
        "accompagnements",
        ["mission_id", "debut", "fin", "heures"],
    )
    op.drop_index("ix_accompagnements_mission_id", table_name="accompagnements")


def downgrade() -> None:
    op.create_index("ix_accompagnements_mission_id", "accompagnements", ["mission_id"])
    op.drop_index("ix_accompagnements_mission_load", table_name="accompagnements")

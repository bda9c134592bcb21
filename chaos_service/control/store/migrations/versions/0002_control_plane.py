"""What serving needs beyond the first schema: stored experiments, run reports, cross-replica
abort requests, the halt switch, and what each game-day firing did."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False),
    )
    op.create_table(
        "run_reports",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("content", sa.Text, nullable=False),
    )
    op.create_table(
        "control_state",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    with op.batch_alter_table("runs") as runs:
        runs.add_column(sa.Column("dry_run", sa.Integer, nullable=False, server_default="0"))
        runs.add_column(sa.Column("abort_requested", sa.Text))
        runs.add_column(sa.Column("schedule_id", sa.String(64)))
    with op.batch_alter_table("firings") as firings:
        firings.add_column(sa.Column("finished_at", sa.Float))
        firings.add_column(sa.Column("detail", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("firings") as firings:
        firings.drop_column("detail")
        firings.drop_column("finished_at")
    with op.batch_alter_table("runs") as runs:
        runs.drop_column("schedule_id")
        runs.drop_column("abort_requested")
        runs.drop_column("dry_run")
    for table in ("control_state", "run_reports", "experiments"):
        op.drop_table(table)

"""The store's tables (SQLAlchemy Core). Migrations create them; this is how the code names them.

Times are UTC epoch seconds (floats) so that SQLite and Postgres compare them the same way.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("experiment", String(200), nullable=False),
    Column("status", String(32), nullable=False),  # pending, running, passed, failed, …, interrupted
    Column("reason", Text, nullable=False, default=""),
    Column("started_by", String(100), nullable=False),
    Column("replica", String(100), nullable=False),  # the control-plane process that runs it
    Column("created_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("journal", JSON),
    Column("dry_run", Integer, nullable=False, default=0),
    Column("abort_requested", Text),  # the reason, set by whichever replica was asked
    Column("schedule_id", String(64)),  # the game day that started it, if one did
)

run_events = Table(
    "run_events",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("at", Float, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("data", JSON, nullable=False),
)

applied_faults = Table(
    "applied_faults",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32)),  # none for an ad-hoc fault
    Column("name", String(200), nullable=False),
    Column("driver", String(32), nullable=False),
    Column("handle", JSON, nullable=False),
    Column("recorded_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("removed_at", Float),
)

schedules = Table(
    "schedules",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("cron", String(100), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("experiments", JSON, nullable=False),
    Column("overlap", String(16), nullable=False, default="forbid"),
    Column("misfire", String(16), nullable=False, default="skip"),
    Column("webhook", Text),
    Column("enabled", Integer, nullable=False, default=1),
    Column("created_at", Float, nullable=False),
)

firings = Table(
    "firings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("schedule_id", String(64), ForeignKey("schedules.id", ondelete="CASCADE"), nullable=False),
    Column("fire_time", Float, nullable=False),
    Column("replica", String(100), nullable=False),
    Column("claimed_at", Float, nullable=False),
    Column("outcome", String(32)),
    Column("finished_at", Float),
    Column("detail", JSON),  # the runs it started and what the webhook answered
    UniqueConstraint("schedule_id", "fire_time", name="uq_firings_schedule_fire_time"),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(200), nullable=False, default=""),
    Column("detail", JSON, nullable=False),
)

experiments = Table(
    "experiments",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("title", String(300), nullable=False),
    Column("source", Text, nullable=False),  # the experiment file's YAML, as sent
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(100), nullable=False),
)

run_reports = Table(
    "run_reports",
    metadata,
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(16), primary_key=True),  # journal, junit, html
    Column("content", Text, nullable=False),
)

#: Switches shared by every replica, e.g. ``halt``.
control_state = Table(
    "control_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
)

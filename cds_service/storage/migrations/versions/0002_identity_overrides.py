"""Overrides per card identity, so suppression is one indexed lookup however often a chart is opened.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_overrides",
        sa.Column("identity", sa.String(64), nullable=False),
        sa.Column("indicator", sa.String(16), nullable=False),
        sa.Column("last_overridden_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("identity", "indicator", name="pk_identity_overrides"),
    )


def downgrade() -> None:
    op.drop_table("identity_overrides")

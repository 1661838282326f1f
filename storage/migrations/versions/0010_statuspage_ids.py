"""statuspage_ids: which row each imported Statuspage object became, for idempotent imports

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-01 12:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "statuspage_ids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("statuspage_id", sa.String(length=64), nullable=False),
        sa.Column("local_id", sa.Integer(), nullable=False),
        sa.Column("imported_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_statuspage_ids")),
        sa.UniqueConstraint(
            "page_id",
            "kind",
            "statuspage_id",
            name=op.f("uq_statuspage_ids_page_id_kind_statuspage_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("statuspage_ids")

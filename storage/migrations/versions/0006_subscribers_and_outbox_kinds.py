"""subscribers and outbox kinds: who is told by email and webhook; outbox lines per deliverer

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:19:38.906223
"""

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=12), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("endpoint", sa.Text(), nullable=True),
        sa.Column("address_key", sa.String(length=2048), nullable=False),
        sa.Column("secret", sa.String(length=80), nullable=True),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("confirmation_sent_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("unsubscribed_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("quarantined_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("bounced_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscribers")),
        sa.UniqueConstraint("code", name=op.f("uq_subscribers_code")),
        sa.UniqueConstraint("token", name=op.f("uq_subscribers_token")),
    )
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subscribers_external_id"), ["external_id"], unique=False
        )
        batch_op.create_index(
            "uq_subscribers_live_address",
            ["kind", "address_key"],
            unique=True,
            sqlite_where=sa.text("unsubscribed_at IS NULL"),
            postgresql_where=sa.text("unsubscribed_at IS NULL"),
        )

    op.create_table(
        "subscriber_components",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("component_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["component_id"],
            ["components.id"],
            name=op.f("fk_subscriber_components_component_id_components"),
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_subscriber_components_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "subscriber_id", "component_id", name=op.f("pk_subscriber_components")
        ),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=10), server_default="slack", nullable=False)
        )
        batch_op.drop_index(
            batch_op.f("ix_outbox_line"),
            sqlite_where=sa.text("delivered_at IS NULL AND failed_at IS NULL"),
        )
        batch_op.create_index(
            "ix_outbox_line",
            ["kind", "channel", "incident_id", "id"],
            unique=False,
            postgresql_where=sa.text("delivered_at IS NULL AND failed_at IS NULL"),
            sqlite_where=sa.text("delivered_at IS NULL AND failed_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_line",
            postgresql_where=sa.text("delivered_at IS NULL AND failed_at IS NULL"),
            sqlite_where=sa.text("delivered_at IS NULL AND failed_at IS NULL"),
        )
        batch_op.create_index(
            batch_op.f("ix_outbox_line"),
            ["channel", "incident_id", "id"],
            unique=False,
            sqlite_where=sa.text("delivered_at IS NULL AND failed_at IS NULL"),
        )
        batch_op.drop_column("kind")

    op.drop_table("subscriber_components")
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_subscribers_live_address",
            sqlite_where=sa.text("unsubscribed_at IS NULL"),
            postgresql_where=sa.text("unsubscribed_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_subscribers_external_id"))

    op.drop_table("subscribers")

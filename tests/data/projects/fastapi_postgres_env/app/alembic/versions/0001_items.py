"""Create items."""

import sqlalchemy as sa
from alembic import op

revision = "0001_items"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "item",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("title", sa.Text, nullable=False),
    )
    op.create_index("ix_item_title", "item", ["title"])
    op.execute("INSERT INTO item (title) SELECT 'item ' || g FROM generate_series(1, 20) g")


def downgrade() -> None:
    op.drop_index("ix_item_title", table_name="item")
    op.drop_table("item")

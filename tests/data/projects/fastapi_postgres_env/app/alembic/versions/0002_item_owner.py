"""Add item.owner with an index."""

import sqlalchemy as sa
from alembic import op

revision = "0002_item_owner"
down_revision = "0001_items"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("item", sa.Column("owner", sa.Text))
    op.create_index("ix_item_owner", "item", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_item_owner", table_name="item")
    op.drop_column("item", "owner")

"""e1_accounts: contrib extensions and a table that uses all three."""

from alembic import op

revision = "e1_accounts"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute('CREATE EXTENSION IF NOT EXISTS "uuid-ossp"')
    op.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
    op.execute("CREATE EXTENSION IF NOT EXISTS citext")
    op.execute(
        "CREATE TABLE account ("
        " id uuid PRIMARY KEY DEFAULT uuid_generate_v4(),"
        " email citext NOT NULL UNIQUE,"
        " api_key_hash text NOT NULL"
        "  DEFAULT encode(digest(gen_random_uuid()::text, 'sha256'), 'hex'),"
        " created_at timestamptz NOT NULL DEFAULT now())"
    )


def downgrade() -> None:
    op.execute("DROP TABLE account")
    op.execute("DROP EXTENSION citext")
    op.execute("DROP EXTENSION pgcrypto")
    op.execute('DROP EXTENSION "uuid-ossp"')

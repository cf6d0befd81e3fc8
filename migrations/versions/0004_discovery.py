"""Discovery: a search document kept by the database, listing indexes, sales counters, preview clips, and the
word and tag lists that suggestions and tag pages read.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import TSVECTOR

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

LISTED = "status = 'published' AND deleted_at IS NULL"

# The search document: title (A), creator name and tags (B), description (C). Tags are label paths such as
# music.electronic.deep_house; their labels become words. The creator's name lives in users, so a trigger (not a
# generated column) builds it, and a second trigger rebuilds it when a creator renames themselves.
DOCUMENT = """
CREATE FUNCTION item_search_document(title text, creator_name text, tags ltree[], description text)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT setweight(to_tsvector('english', coalesce(title, '')), 'A')
      || setweight(to_tsvector('english', coalesce(creator_name, '')), 'B')
      || setweight(to_tsvector('english', translate(array_to_string(tags::text[], ' '), '._', '  ')), 'B')
      || setweight(to_tsvector('english', left(coalesce(description, ''), 20000)), 'C')
$$;

CREATE FUNCTION items_search_vector_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.search_vector := item_search_document(
    NEW.title,
    (SELECT u.display_name || ' ' || u.username FROM users u WHERE u.id = NEW.creator_id),
    NEW.tags, NEW.description_md);
  RETURN NEW;
END $$;

CREATE TRIGGER items_search_vector BEFORE INSERT OR UPDATE OF title, description_md, tags, creator_id
ON items FOR EACH ROW EXECUTE FUNCTION items_search_vector_refresh();

CREATE FUNCTION users_renamed_refresh_items() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE items SET search_vector = item_search_document(
    title, NEW.display_name || ' ' || NEW.username, tags, description_md)
  WHERE creator_id = NEW.id;
  RETURN NULL;
END $$;

CREATE TRIGGER users_renamed AFTER UPDATE OF display_name, username ON users FOR EACH ROW
WHEN (OLD.display_name IS DISTINCT FROM NEW.display_name OR OLD.username IS DISTINCT FROM NEW.username)
EXECUTE FUNCTION users_renamed_refresh_items();
"""

# Words people could have meant ("did you mean"), from what listed items are called, who made them and their
# tags; and every tag with its ancestors and how many listed items sit under it. Both are refreshed by a job.
# Names are schema-qualified because PostgreSQL refreshes materialized views with a minimal search_path.
VIEWS = """
CREATE MATERIALIZED VIEW search_words AS
  SELECT word, ndoc FROM ts_stat($q$
    SELECT to_tsvector('simple', i.title || ' ' || u.display_name || ' '
                       || translate(array_to_string(i.tags::text[], ' '), '._', '  '))
    FROM public.items i JOIN public.users u ON u.id = i.creator_id
    WHERE i.status = 'published' AND i.deleted_at IS NULL
  $q$)
  WHERE length(word) BETWEEN 3 AND 40 AND word ~ '^[[:alpha:]]+$';
CREATE UNIQUE INDEX uq_search_words_word ON search_words (word);
CREATE INDEX ix_search_words_trgm ON search_words USING gin (word gin_trgm_ops);

CREATE MATERIALIZED VIEW tag_counts AS
  SELECT path, count(*)::int AS items FROM (
    SELECT DISTINCT i.id, public.subpath(t, 0, n) AS path
    FROM public.items i, unnest(i.tags) AS t, generate_series(1, public.nlevel(t)) AS n
    WHERE i.status = 'published' AND i.deleted_at IS NULL
  ) AS ancestry GROUP BY path;
CREATE UNIQUE INDEX uq_tag_counts_path ON tag_counts (path);
CREATE INDEX ix_tag_counts_path_gist ON tag_counts USING gist (path);
CREATE INDEX ix_tag_counts_trgm ON tag_counts USING gin ((path::text) gin_trgm_ops);
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.add_column("items", sa.Column("search_vector", TSVECTOR(), nullable=True))
    op.add_column("items", sa.Column("sales_count", sa.Integer(), server_default="0", nullable=False))
    op.add_column("items", sa.Column("recent_sales", sa.Integer(), server_default="0", nullable=False))
    op.add_column("items", sa.Column("preview_upload_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key("fk_items_preview_upload_id_uploads", "items", "uploads", ["preview_upload_id"], ["id"],
                          ondelete="SET NULL", use_alter=True)
    op.drop_constraint("purpose", "uploads", type_="check")
    op.create_check_constraint("purpose", "uploads", "purpose IN ('file', 'cover', 'avatar', 'preview')")
    # price_cents becomes "the least a buyer pays" for every mode, so lists can sort and filter on one column.
    op.execute("UPDATE items SET price_cents = min_price_cents WHERE price_mode = 'pwyw'")
    op.execute(DOCUMENT)
    op.execute("UPDATE items SET title = title")  # fill the new column for rows that already exist
    op.create_index("ix_items_search", "items", ["search_vector"], postgresql_using="gin")
    # Type-ahead reads titles that start with what was typed, in index order ("C": byte order, so LIKE 'abc%' is a
    # range of this index whatever the database's collation).
    op.execute(f'CREATE INDEX ix_items_title_prefix ON items ((lower(title) COLLATE "C")) WHERE {LISTED}')
    # The planner's guess at how many rows a rare word matches decides between the GIN index and walking a sorted
    # index; the default statistics target (100) overestimates rare words enough to pick the slow walk.
    op.execute("ALTER TABLE items ALTER COLUMN search_vector SET STATISTICS 1000")
    op.create_index("ix_items_listed_new", "items", [sa.text("published_at DESC"), sa.text("id DESC")],
                    postgresql_where=sa.text(LISTED))
    op.create_index("ix_items_listed_popular", "items", [sa.text("recent_sales DESC"), sa.text("id DESC")],
                    postgresql_where=sa.text(LISTED))
    op.create_index("ix_items_listed_sales", "items", [sa.text("sales_count DESC"), sa.text("id DESC")],
                    postgresql_where=sa.text(LISTED))
    op.create_index("ix_items_listed_price", "items", ["price_cents", "id"], postgresql_where=sa.text(LISTED))
    op.create_index("ix_items_listed_creator", "items", ["creator_id", sa.text("published_at DESC"),
                    sa.text("id DESC")], postgresql_where=sa.text(LISTED))
    op.create_index("ix_items_listed_project", "items", ["project_id", sa.text("published_at DESC"),
                    sa.text("id DESC")], postgresql_where=sa.text(LISTED))
    op.execute('CREATE INDEX ix_users_display_name_prefix ON users ((lower(display_name) COLLATE "C"))')
    op.execute(VIEWS)


def downgrade() -> None:
    op.execute("DROP MATERIALIZED VIEW tag_counts")
    op.execute("DROP MATERIALIZED VIEW search_words")
    op.drop_index("ix_users_display_name_prefix", table_name="users")
    for name in ("ix_items_listed_project", "ix_items_listed_creator", "ix_items_listed_price",
                 "ix_items_listed_sales", "ix_items_listed_popular", "ix_items_listed_new", "ix_items_title_prefix",
                 "ix_items_search"):
        op.drop_index(name, table_name="items")
    op.execute("DROP TRIGGER users_renamed ON users")
    op.execute("DROP FUNCTION users_renamed_refresh_items()")
    op.execute("DROP TRIGGER items_search_vector ON items")
    op.execute("DROP FUNCTION items_search_vector_refresh()")
    op.execute("DROP FUNCTION item_search_document(text, text, ltree[], text)")
    op.drop_constraint("purpose", "uploads", type_="check")
    op.execute("DELETE FROM uploads WHERE purpose = 'preview'")
    op.create_check_constraint("purpose", "uploads", "purpose IN ('file', 'cover', 'avatar')")
    op.drop_constraint("fk_items_preview_upload_id_uploads", "items", type_="foreignkey")
    for column in ("preview_upload_id", "recent_sales", "sales_count", "search_vector"):
        op.drop_column("items", column)

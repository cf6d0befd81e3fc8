"""Load a large made-up catalog (default 1,000,000 items by 5,000 creators) for the search benchmark.

The text is English-like with a skewed (Zipf-like) vocabulary, and three query words are planted on purpose:
a selective one (< 1,000 items), a medium one (~1 %) and a non-selective one (≥ 30 %). They are printed at the
end with their match counts; search_latency.py asks for them.

    .venv/bin/python tests/bench/seed_catalog.py --fresh               # 1M items, 3–4 minutes
    .venv/bin/python tests/bench/seed_catalog.py --fresh --items 100000
    .venv/bin/python tests/bench/seed_catalog.py --help

By default the data lives in its own embedded PostgreSQL under var/bench-pg/pgdata (database
fairshelf_bench_catalog), apart from the development (var/pgdata) and test servers. It is kept between runs
and stopped when the script exits; search_latency.py starts it again. `--admin-url` uses another server.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

import psycopg  # noqa: E402
from catalog_text import (  # noqa: E402
    NON_SELECTIVE,
    PHRASE,
    PLANTED,
    QUERIES,
    Tags,
    Vocabulary,
    Writer,
    creator_names,
    slugify,
)
from common import BENCH, ROOT, log, write_results  # noqa: E402
from psycopg.copy import QueuedLibpqWriter  # noqa: E402

from app.settings import Settings  # noqa: E402

DEFAULT_PGDATA = ROOT / "var" / "bench-pg" / "pgdata"
DEFAULT_DATABASE = "fairshelf_bench_catalog"
PUBLIC_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # as app.db.base.new_public_id
CREATOR_PASSWORD = "bench-catalog-password"  # every seeded creator's, so one can log in and look around
EMAIL_DOMAIN = "bench.fairshelf.localhost"
DAY = 86_400.0

ITEM_COLUMNS = (
    "public_id", "creator_id", "type", "title", "slug", "description_md", "description_html", "price_mode",
    "price_cents", "min_price_cents", "suggested_price_cents", "currency", "tags", "ai_label", "status",
    "wizard_step", "published_at", "sales_count", "recent_sales", "created_at", "updated_at",
)
ITEM_TYPES = (("audio", 35), ("image", 20), ("text", 20), ("video", 10), ("file", 15))
FIXED_PRICES = (99, 199, 299, 300, 400, 500, 700, 800, 900, 1000, 1200, 1500, 2000, 2500, 3000, 4900, 9900)
FIXED_WEIGHTS = (4, 6, 6, 8, 6, 12, 8, 5, 6, 9, 4, 6, 5, 3, 3, 2, 1)
AI_LABELS = (("handmade", 55), ("assisted", 15), ("generated", 5), (None, 25))


# ------------------------------------------------------------------------------------------------------------
# Where the catalog lives (search_latency.py uses the same helpers)


def bench_database(pgdata: Path, name: str, admin_url: str = "", *, fresh: bool = False) -> str:
    """Start (or join) the bench PostgreSQL, create database `name` (afresh when asked); return its URL."""
    from app.db import embedded

    if not admin_url:
        admin_url = embedded.start(pgdata)  # stopped when this process exits; the data stays
        return embedded.ensure_database(admin_url, name, fresh=fresh)
    embedded.ensure_database(admin_url, name, fresh=fresh)
    return urlparse(admin_url)._replace(path="/" + name).geturl()  # keeps a TCP host, user and password


def add_database_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pgdata", type=Path, default=DEFAULT_PGDATA,
                   help=f"embedded PostgreSQL data folder (default {DEFAULT_PGDATA.relative_to(ROOT)})")
    p.add_argument("--database", default=DEFAULT_DATABASE, help=f"database name (default {DEFAULT_DATABASE})")
    p.add_argument("--admin-url", default="",
                   help="use this PostgreSQL server (a URL of any database on it, as a superuser) instead "
                        "of the embedded one")


def query_counts(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    """How many listed items each benchmark query matches, as the search page would count them."""
    out = []
    for label, q in QUERIES:
        t = time.monotonic()
        n = conn.execute(
            "SELECT count(*) FROM items WHERE status = 'published' AND deleted_at IS NULL "
            "AND search_vector @@ websearch_to_tsquery('english', %s)", (q,)).fetchone()[0]
        out.append({"label": label, "q": q, "matches": n,
                    "count_ms": round((time.monotonic() - t) * 1000, 1)})
    return out


# ------------------------------------------------------------------------------------------------------------
# Rows


def copy_text(value: Any) -> str:
    """One field in COPY's text format."""
    if value is None:
        return "\\N"
    s = str(value)
    if "\\" in s or "\t" in s or "\n" in s or "\r" in s:
        s = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return s


def timestamp(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(sep=" ", timespec="seconds")


class Catalog:
    """Generates creators and items; deterministic for a seed."""

    def __init__(self, seed: int, now: float) -> None:
        self.rng = random.Random(seed)
        self.now = now
        t = time.monotonic()
        self.vocabulary = Vocabulary.build(self.rng)
        self.writer = Writer(self.rng, self.vocabulary)
        self.tags = Tags(self.rng)
        self.public_ids: set[str] = set()
        self.slugs: dict[str, int] = {}
        self.vocabulary_seconds = time.monotonic() - t

    def creators(self, count: int) -> list[tuple[str, str, str]]:
        """(username, display name, bio) for each creator."""
        names = creator_names(self.rng, count)
        return [(u, d, self.writer.description([])[0].split("\n\n")[0][:300]) for u, d in names]

    def public_id(self) -> str:
        while True:
            pid = "".join(self.rng.choices(PUBLIC_ID_ALPHABET, k=12))
            if pid not in self.public_ids:
                self.public_ids.add(pid)
                return pid

    def slug(self, creator_id: int, title: str) -> str:
        """Unique among the creator's items: 'title', 'title-2', … (as the app derives it)."""
        base = slugify(title)
        key = f"{creator_id}/{base}"
        n = self.slugs.get(key, 0) + 1
        self.slugs[key] = n
        return base if n == 1 else f"{base[:75]}-{n}"

    def item_line(self, creator_id: int) -> str:
        rng = self.rng
        item_type = rng.choices(ITEM_TYPES_NAMES, cum_weights=ITEM_TYPES_CUM)[0]
        # The planted words: each independently, in the title or the description.
        title_words: list[str] = []
        text_words: list[str] = []
        if rng.random() < PHRASE[1]:
            text_words.append(PHRASE[0])
        for planted in PLANTED:
            if planted is NON_SELECTIVE and text_words:
                continue  # the phrase already has it
            if rng.random() < planted.rate:
                (title_words if rng.random() < planted.in_title else text_words).append(planted.word)
        title = self.writer.title(title_words)
        description_md, description_html = self.writer.description(text_words)
        tags = "{" + ",".join(self.tags.pick(item_type)) + "}"

        mode = rng.choices(("free", "fixed", "pwyw"), cum_weights=(35, 80, 100))[0]
        price = minimum = suggested = 0
        if mode == "fixed":
            price = rng.choices(FIXED_PRICES, FIXED_WEIGHTS)[0]
        elif mode == "pwyw":
            minimum = 0 if rng.random() < 0.6 else rng.choice((100, 200, 300, 500))
            suggested = max(minimum, rng.choice((300, 500, 700, 1000, 1500)))
            price = minimum

        # Two years of items, more of them recent; 3 % are drafts.
        age = 730 * DAY * rng.random() ** 1.3
        if rng.random() < 0.03:
            status, step, published_at = "draft", rng.choice(("details", "files", "pricing", "publish")), None
            created = self.now - age
            updated = min(self.now, created + rng.random() * 5 * DAY)
            sales = recent = 0
        else:
            status, step = "published", "publish"
            published = self.now - age
            published_at = timestamp(published)
            created = published - rng.random() * 3 * DAY
            updated = min(self.now, published + (rng.random() * 60 * DAY if rng.random() < 0.2 else 0))
            # Most items never sell; a few sell a lot (a heavy tail).
            recent = 0 if rng.random() < 0.8 else min(int(rng.paretovariate(1.1)), 20_000)
            older = 0 if rng.random() < 0.55 else min(int(3 * (rng.paretovariate(1.05) - 1)), 200_000)
            sales = recent + older
        ai_label = rng.choices(AI_LABEL_NAMES, cum_weights=AI_LABEL_CUM)[0]
        row = (self.public_id(), creator_id, item_type, title, self.slug(creator_id, title), description_md,
               description_html, mode, price, minimum, suggested, "USD", tags, ai_label, status, step,
               published_at, sales, recent, timestamp(created), timestamp(updated))
        return "\t".join(map(copy_text, row)) + "\n"


ITEM_TYPES_NAMES = [t for t, _ in ITEM_TYPES]
ITEM_TYPES_CUM = [sum(w for _, w in ITEM_TYPES[:i + 1]) for i in range(len(ITEM_TYPES))]
AI_LABEL_NAMES = [a for a, _ in AI_LABELS]
AI_LABEL_CUM = [sum(w for _, w in AI_LABELS[:i + 1]) for i in range(len(AI_LABELS))]


# ------------------------------------------------------------------------------------------------------------
# Loading


class Phases:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        log(f"{name} …")
        t = time.monotonic()
        yield
        self.seconds[name] = round(time.monotonic() - t, 1)
        log(f"{name}: {self.seconds[name]:.1f}s")


def load_creators(conn: psycopg.Connection[Any], catalog: Catalog, count: int) -> list[int]:
    from app.accounts.passwords import Passwords

    password_hash = Passwords(Settings()).hasher.hash(CREATOR_PASSWORD)  # default (production) Argon2id
    rows = catalog.creators(count)
    rng, now = catalog.rng, catalog.now
    joined = [now - 1100 * DAY * rng.random() ** 0.7 for _ in rows]
    with conn.cursor() as cur:
        with cur.copy("COPY users (email, username, display_name, password_hash, email_verified_at, "
                      "created_at) FROM STDIN") as copy:
            for (username, display, _), at in zip(rows, joined, strict=True):
                copy.write("\t".join(map(copy_text, (f"{username}@{EMAIL_DOMAIN}", username, display,
                                                     password_hash, timestamp(at), timestamp(at)))) + "\n")
        ids = dict(cur.execute("SELECT username::text, id FROM users WHERE email LIKE %s",
                               (f"%@{EMAIL_DOMAIN}",)).fetchall())
        with cur.copy("COPY creators (user_id, tier, bio, created_at) FROM STDIN") as copy:
            for (username, _, bio), at in zip(rows, joined, strict=True):
                row = (ids[username], "basic", bio, timestamp(at + DAY))
                copy.write("\t".join(map(copy_text, row)) + "\n")
    conn.commit()
    return [ids[username] for username, _, _ in rows]


def secondary_indexes(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """items' indexes that no constraint owns (not pk_items or uq_items_public_id), with their definitions."""
    return conn.execute("""
        SELECT c.relname, pg_get_indexdef(x.indexrelid)
        FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
        WHERE x.indrelid = 'items'::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid)
        ORDER BY c.relname""").fetchall()


def load_items(conn: psycopg.Connection[Any], catalog: Catalog, creator_ids: list[int], count: int,
               batch: int = 2000) -> dict[str, float]:
    """COPY `count` items; return seconds spent generating (Python) vs. the whole phase."""
    rng = catalog.rng
    # Some creators are much busier than others.
    order = creator_ids[:]
    rng.shuffle(order)
    cum: list[float] = []
    total = 0.0
    for k in range(len(order)):
        total += 1 / (k + 1) ** 0.7
        cum.append(total)
    generating = 0.0
    t0 = time.monotonic()
    next_report = 100_000
    # The queued writer sends the data from a thread, so generating the next batch overlaps PostgreSQL's work.
    with conn.cursor() as cur, cur.copy(f"COPY items ({', '.join(ITEM_COLUMNS)}) FROM STDIN",
                                        writer=QueuedLibpqWriter(cur)) as copy:
        done = 0
        while done < count:
            n = min(batch, count - done)
            g = time.monotonic()
            creators = rng.choices(order, cum_weights=cum, k=n)
            chunk = "".join(catalog.item_line(c) for c in creators)
            generating += time.monotonic() - g
            copy.write(chunk)
            done += n
            if done >= next_report or done == count:
                elapsed = time.monotonic() - t0
                log(f"  {done:,} items sent, {done / elapsed:,.0f}/s "
                    f"(generating took {generating:.0f}s of {elapsed:.0f}s)")
                next_report += 100_000
    conn.commit()
    return {"generate_seconds": round(generating, 1)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from app.db.migrate import upgrade

    phases = Phases()
    result: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                              "params": {k: str(v) for k, v in vars(args).items()}}
    with phases.phase("database"):
        url = bench_database(args.pgdata, args.database, args.admin_url, fresh=args.fresh)
        log(f"  {url}")
    with phases.phase("migrate"):
        upgrade(Settings(mode="test", database_url=url))

    with psycopg.connect(url) as conn:
        existing = conn.execute("SELECT count(*) FROM items").fetchone()[0]
        if existing:
            raise SystemExit(f"{args.database} already has {existing:,} items: pass --fresh to start again")
        conn.execute("SET synchronous_commit = off")
        conn.execute("SET maintenance_work_mem = '1GB'")  # index builds
        settings = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in (
            "server_version", "shared_buffers", "work_mem", "maintenance_work_mem", "max_wal_size",
            "max_parallel_maintenance_workers")}
        result["postgres"] = settings
        log(f"  PostgreSQL {settings.get('server_version')}: {settings}")
        conn.commit()

        catalog = Catalog(args.seed, time.time())
        with phases.phase(f"creators ({args.creators:,} users + creators)"):
            creator_ids = load_creators(conn, catalog, args.creators)

        indexes = secondary_indexes(conn)
        if args.indexes == "rebuild":
            with phases.phase(f"drop {len(indexes)} secondary indexes of items"):
                for name, _ in indexes:
                    conn.execute(f'DROP INDEX "{name}"')
                conn.commit()
        if args.search_vector == "update":
            conn.execute("ALTER TABLE items DISABLE TRIGGER items_search_vector")
            conn.commit()
        try:
            how = "search_vector by trigger" if args.search_vector == "trigger" else "trigger disabled"
            with phases.phase(f"items ({args.items:,}, COPY, {how}, indexes {args.indexes})"):
                result["items_load"] = load_items(conn, catalog, creator_ids, args.items)
            if args.search_vector == "update":
                with phases.phase("search_vector (one UPDATE … item_search_document)"):
                    conn.execute("""
                        UPDATE items i SET search_vector = item_search_document(
                            i.title, u.display_name || ' ' || u.username, i.tags, i.description_md)
                        FROM users u WHERE u.id = i.creator_id""")
                    conn.commit()
        finally:
            if args.search_vector == "update":
                conn.rollback()
                conn.execute("ALTER TABLE items ENABLE TRIGGER items_search_vector")
                conn.commit()
        if args.indexes == "rebuild":
            result["index_seconds"] = {}
            with phases.phase(f"rebuild {len(indexes)} secondary indexes"):
                for name, definition in indexes:
                    t = time.monotonic()
                    conn.execute(definition)
                    conn.commit()
                    result["index_seconds"][name] = round(time.monotonic() - t, 1)
                    log(f"  {name}: {result['index_seconds'][name]:.1f}s")
        missing = {n for n, _ in indexes} - {n for n, _ in secondary_indexes(conn)}
        if missing:
            raise RuntimeError(f"indexes missing after the load: {sorted(missing)}")

    # Default session settings from here on: the app's refresh job runs these with them too.
    with psycopg.connect(url, autocommit=True) as conn:
        with phases.phase("REFRESH MATERIALIZED VIEW search_words"):
            conn.execute("REFRESH MATERIALIZED VIEW search_words")
        with phases.phase("REFRESH MATERIALIZED VIEW tag_counts"):
            conn.execute("REFRESH MATERIALIZED VIEW tag_counts")
        with phases.phase("VACUUM ANALYZE items"):
            conn.execute("VACUUM ANALYZE items")
        with phases.phase("VACUUM ANALYZE users, creators"):
            conn.execute("VACUUM ANALYZE users, creators")
        result["phases"] = phases.seconds
        result["total_seconds"] = round(sum(phases.seconds.values()), 1)
        result["sizes"] = sizes(conn, args.database)
        result["catalog"] = catalog_stats(conn)
        result["queries"] = query_counts(conn)
    result["vocabulary"] = {"words": len(catalog.vocabulary.words),
                            "built_seconds": round(catalog.vocabulary_seconds, 1)}
    return result


def sizes(conn: psycopg.Connection[Any], database: str) -> dict[str, Any]:
    row = conn.execute("""
        SELECT pg_database_size(%s), pg_total_relation_size('items'), pg_relation_size('items'),
               pg_indexes_size('items'), pg_total_relation_size('items') - pg_relation_size('items')
               - pg_indexes_size('items')""", (database,)).fetchone()
    mib = lambda b: round(b / 2**20, 1)  # noqa: E731
    indexes = conn.execute("""
        SELECT c.relname, pg_relation_size(c.oid) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
        WHERE x.indrelid = 'items'::regclass ORDER BY 2 DESC""").fetchall()
    return {"database_mib": mib(row[0]), "items_total_mib": mib(row[1]), "items_heap_mib": mib(row[2]),
            "items_indexes_mib": mib(row[3]), "items_toast_mib": mib(row[4]),
            "index_mib": {name: mib(size) for name, size in indexes}}


def catalog_stats(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    by_status = dict(conn.execute("SELECT status, count(*) FROM items GROUP BY 1").fetchall())
    words = conn.execute("SELECT count(*), max(ndoc) FROM search_words").fetchone()
    # How skewed the words are: items per word at a few ranks (titles, names and tags, as search_words has).
    ranks = conn.execute("""
        SELECT r, word, ndoc FROM (SELECT word, ndoc, row_number() OVER (ORDER BY ndoc DESC, word) AS r
                                   FROM search_words) s
        WHERE r IN (1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000, 50000) ORDER BY r""").fetchall()
    singles = conn.execute("SELECT count(*) FROM search_words WHERE ndoc <= 10").fetchone()[0]
    tags = conn.execute("SELECT count(*) FROM tag_counts").fetchone()[0]
    return {"items_by_status": by_status, "search_words": words[0], "words_in_10_items_or_fewer": singles,
            "word_ndoc_by_rank": [list(r) for r in ranks], "tag_paths": tags}


def report(result: dict[str, Any]) -> str:
    lines = ["", "== seed_catalog: phases =="]
    for name, seconds in result["phases"].items():
        lines.append(f"  {name:<70} {seconds:>8.1f} s")
    lines.append(f"  {'total':<70} {result['total_seconds']:>8.1f} s")
    if "index_seconds" in result:
        lines.append("  index builds: " + ", ".join(f"{k} {v}s" for k, v in result["index_seconds"].items()))
    s = result["sizes"]
    lines += ["", "== sizes ==",
              f"  pg_database_size: {s['database_mib']:,.0f} MiB; items: {s['items_total_mib']:,.0f} MiB "
              f"(heap {s['items_heap_mib']:,.0f}, indexes {s['items_indexes_mib']:,.0f}, "
              f"toast {s['items_toast_mib']:,.0f})",
              "  " + ", ".join(f"{k} {v:,.0f}" for k, v in s["index_mib"].items())]
    c = result["catalog"]
    lines += ["", "== catalog ==", f"  items by status: {c['items_by_status']}",
              f"  search_words: {c['search_words']:,} words "
              f"({c['words_in_10_items_or_fewer']:,} in ≤ 10 items); tag paths: {c['tag_paths']}",
              "  word frequency by rank (rank, word, items): "
              + "; ".join(f"{r} {w} {n:,}" for r, w, n in c["word_ndoc_by_rank"])]
    published = c["items_by_status"].get("published", 0) or 1
    lines += ["", "== query words (listed items matching websearch_to_tsquery('english', q)) =="]
    for q in result["queries"]:
        lines.append(f"  {q['label']:<14} {q['q']:<22} {q['matches']:>9,}  ({q['matches'] / published:6.2%})")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=1_000_000, help="items to load (default 1,000,000)")
    p.add_argument("--creators", type=int, default=5_000, help="creators to load (default 5,000)")
    p.add_argument("--fresh", action="store_true", help="drop and recreate the bench database first")
    p.add_argument("--seed", type=int, default=20261125, help="random seed (same seed, same catalog)")
    p.add_argument("--indexes", choices=("rebuild", "live"), default="rebuild",
                   help="rebuild: drop items' secondary indexes before the COPY and recreate them from their "
                        "own definitions afterwards (default, faster); live: keep them during the COPY")
    p.add_argument("--search-vector", choices=("trigger", "update"), default="trigger",
                   help="trigger: items_search_vector fills it during the COPY (default); update: disable "
                        "the trigger and fill it with one UPDATE afterwards")
    add_database_arguments(p)
    p.add_argument("--json", type=Path, default=BENCH / "results",
                   help="folder for the JSON results (default tests/bench/results; '-' to skip)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run(args)
    print(report(result), flush=True)
    write_results(result, args.json, "seed-catalog")
    print(json.dumps({q["label"]: {"q": q["q"], "matches": q["matches"]} for q in result["queries"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

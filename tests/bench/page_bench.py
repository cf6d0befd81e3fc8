"""What item_page.py and flash_crowd.py share: a small but realistic catalogue loaded with COPY, Granian
serving any ASGI target (the app or the reference app), wrk with a latency report, and the statements one
request sends, as PostgreSQL logs them.

Not a script (see README.md). Importing it puts the project root and this folder on sys.path.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path[:0] = [p for p in (str(HERE.parents[1]), str(HERE)) if p not in sys.path]

import psutil  # noqa: E402
import psycopg  # noqa: E402
from common import BENCH, Server  # noqa: E402

PUBLIC_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # as app.db.base.new_public_id
FEATURED = ("mira_lindqvist", "Mira Lindqvist")  # the creator whose page and newest item are measured
THUMBS = [320, 640, 1280]  # cover thumbnail sizes, as the media worker makes them

TAGS = {
    "audio": ["music.electronic.ambient", "music.electronic.techno", "music.jazz", "music.folk",
              "podcasts.history", "field_recordings.coast", "field_recordings.city", "sound_design.foley",
              "music.classical.piano"],
    "video": ["film.short", "film.documentary", "tutorials.video_editing", "music_videos",
              "animation.stop_motion"],
    "image": ["photography.street", "photography.landscape", "illustration.ink", "wallpapers",
              "comics.webcomic"],
    "text": ["books.zines", "books.poetry", "essays.culture", "guides.cooking", "fiction.short_stories"],
    "file": ["photography.presets", "fonts.display", "3d.models", "templates.notion",
             "sound_design.sample_packs",
             "crafts.patterns"],
}
MIMES = {"audio": ("loops.mp3", "audio/mpeg"), "video": ("clip.mp4", "video/mp4"),
         "image": ("print.png", "image/png"), "file": ("pack.zip", "application/zip")}
WORDS = """amber harbor night bus loops quiet field morning tape echo river glass lantern paper moon salt wind
garden slow bright hollow north winter summer static velvet copper signal drift marble cedar ember meadow
orbit paper prism cinder delta fable grove haze indigo juniper kiln lumen mosaic nectar opal quarry rust sable
tide
umber vessel willow yarrow zephyr atlas cobalt dune""".split()
SENTENCES = [
    "Recorded over {n} nights with a borrowed {a} and a very patient {b}.",
    "Everything here was made by hand, start to finish, in a small room above a {a} shop.",
    "**{A} {B}** is the {ord} release in the series; it picks up where the last one left off.",
    "You get the full-resolution files, a short PDF about how it was made, and every future update.",
    "Use it in your own projects, personal or commercial; just don't resell the files as they are.",
    "If you like the {a} tracks, the {b} set next to it on my page is a good companion.",
    "Thanks to everyone who wrote about the first version: the {a} edit exists because you asked for it.",
    "Made without generative AI. The {a} textures come from field recordings near the {b}.",
]


def _text(rng: random.Random) -> tuple[str, str]:
    """(title, description markdown): 1-3 short paragraphs, 300-1,200 characters."""
    title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 4))).title()
    paragraphs = []
    for _ in range(rng.randint(1, 3)):
        picked = rng.sample(SENTENCES, rng.randint(2, 4))
        paragraphs.append(" ".join(s.format(n=rng.randint(2, 40), a=rng.choice(WORDS), b=rng.choice(WORDS),
                                            A=rng.choice(WORDS).title(), B=rng.choice(WORDS).title(),
                                            ord=rng.choice(("second", "third", "fourth"))) for s in picked))
    if rng.random() < 0.4:
        paragraphs.append("\n".join(f"- {rng.choice(WORDS).title()} {rng.choice(WORDS)}" for _ in range(4)))
    return title, "\n\n".join(paragraphs)


def _copy(value: Any) -> str:
    if value is None:
        return "\\N"
    s = str(value)
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _copy_rows(conn: psycopg.Connection[Any], table: str, columns: list[str],
               rows: list[tuple[Any, ...]]) -> None:
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write("".join("\t".join(map(_copy, r)) + "\n" for r in rows))


@dataclass
class Catalogue:
    """What the benchmarks ask for, found or made in the database."""

    item_public_id: str  # the item page measured (the featured creator's newest item)
    creator_username: str  # the creator page measured
    creator_items: int  # published items of that creator (a page shows 24)
    totals: dict[str, int] = field(default_factory=dict)
    item: dict[str, Any] = field(default_factory=dict)  # what the measured item has


ITEM_COPY_COLUMNS = [
    "public_id", "creator_id", "project_id", "type", "title", "slug", "description_md", "description_html",
    "price_mode", "price_cents", "min_price_cents", "suggested_price_cents", "currency", "tags", "ai_label",
    "status", "wizard_step", "published_at", "created_at", "updated_at", "release_date", "credits",
    "chapters",
]
UPLOAD_COPY_COLUMNS = ["public_id", "creator_id", "item_id", "version_id", "purpose", "filename",
                       "size_bytes", "state", "storage_key", "mime", "thumbnails"]
CHAPTERS = '[{"start": 0, "title": "Depot"}, {"start": 312, "title": "Last stop"}]'


def build_catalogue(url: str, *, creators: int = 150, items: int = 4000, featured_items: int = 40,
                    cover_share: float = 0.8, seed: int = 7) -> Catalogue:
    """Creators, projects, items (published, most with covers, tags, versions and files) in an empty, migrated
    database. The featured creator gets `featured_items` items and an avatar. Its newest item is a free audio
    item with a cover, a project, two tags, chapters, and one published version with a ready audio file, so
    its page runs every query an anonymous visit can."""
    from app.web.text import render_markdown

    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    used: set[str] = set()

    def pid() -> str:
        while (p := "".join(rng.choices(PUBLIC_ID_ALPHABET, k=12))) in used:
            pass
        used.add(p)
        return p

    def name() -> str:
        return f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()}"

    texts = [(t, md, render_markdown(md)) for t, md in (_text(rng) for _ in range(300))]
    longest = max(texts, key=lambda d: len(d[2]))
    people = [FEATURED] + [(f"page_creator_{i:04d}", name()) for i in range(1, creators)]
    with psycopg.connect(url, autocommit=False) as conn:
        _copy_rows(conn, "users", ["email", "username", "display_name", "password_hash", "email_verified_at",
                                   "created_at"],
                   [(f"{u}@bench.fairshelf.localhost", u, d, "not-a-password-hash", now,
                     now - timedelta(days=400)) for u, d in people])
        ids = dict(conn.execute("SELECT username::text, id FROM users").fetchall())
        _copy_rows(conn, "creators", ["user_id", "tier", "bio"],
                   [(ids[u], "basic", f"{d} makes things in a small studio. {texts[i % 300][1][:200]}")
                    for i, (u, d) in enumerate(people)])
        project_rows = [(pid(), ids[u], f"{name()} Sessions {k + 1}", f"project-{k + 1}", "A series.",
                         "<p>A series.</p>")
                        for i, (u, _) in enumerate(people) for k in range(3 if i == 0 else rng.randint(0, 3))]
        _copy_rows(conn, "projects", ["public_id", "creator_id", "name", "slug", "description_md",
                                      "description_html"], project_rows)
        projects: dict[int, list[int]] = {}
        for project_id, creator_id in conn.execute("SELECT id, creator_id FROM projects ORDER BY id"):
            projects.setdefault(creator_id, []).append(project_id)

        # The featured creator's items first (the very first is the measured one), then everyone else's.
        rows: list[dict[str, Any]] = []
        owners = [ids[FEATURED[0]]] * featured_items + [ids[rng.choice(people[1:])[0]]
                                                       for _ in range(items - featured_items)]
        for n, creator_id in enumerate(owners):
            kind = rng.choices(list(TAGS), weights=(35, 10, 20, 20, 15))[0]
            title, md, html = texts[n % 300]
            mode = rng.choices(("free", "fixed", "pwyw"), weights=(35, 45, 20))[0]
            minimum = rng.choice((0, 200)) if mode == "pwyw" else 0
            owned = projects.get(creator_id, [])
            published = now - timedelta(hours=1 + n % 2000, minutes=n % 60)
            row = {
                "public_id": pid(), "creator_id": creator_id, "type": kind, "title": f"{title} {n}",
                "project_id": rng.choice(owned) if owned and rng.random() < 0.4 else None,
                "description_md": md, "description_html": html, "price_mode": mode,
                "price_cents": rng.choice((300, 500, 700, 1200)) if mode == "fixed" else 0,
                "min_price_cents": minimum,
                "suggested_price_cents": max(minimum, 500) if mode == "pwyw" else 0,
                "currency": "USD", "tags": rng.sample(TAGS[kind], rng.randint(1, 3)),
                "ai_label": rng.choice(("handmade", "assisted", None)), "status": "published",
                "wizard_step": "publish", "published_at": published,
                "created_at": published - timedelta(hours=2), "updated_at": published,
                "release_date": None, "credits": "", "chapters": "[]",
                "cover": rng.random() < cover_share,
            }
            if n == 0:
                row.update(type="audio", title="Night Bus Loops, Vol. 2", description_md=longest[1],
                           description_html=longest[2], price_mode="free", price_cents=0, min_price_cents=0,
                           suggested_price_cents=0, tags=rng.sample(TAGS["audio"], 2), project_id=owned[0],
                           ai_label="handmade", published_at=now - timedelta(minutes=5),
                           release_date=date(2026, 3, 14), credits="Mastered by Jo Park", chapters=CHAPTERS,
                           cover=True)
            row["slug"] = re.sub(r"[^a-z0-9]+", "-", row["title"].lower()).strip("-")[:70] + f"-{n}"
            rows.append(row)
        _copy_rows(conn, "items", ITEM_COPY_COLUMNS,
                   [tuple("{" + ",".join(r[c]) + "}" if c == "tags" else r[c] for c in ITEM_COPY_COLUMNS)
                    for r in rows])
        item_ids = dict(conn.execute("SELECT public_id, id FROM items").fetchall())
        for r in rows:
            r["id"] = item_ids[r["public_id"]]

        # One published version per file-like item (text has none) with its ready file; covers; an avatar.
        versioned = [r for r in rows if r["type"] != "text"]
        _copy_rows(conn, "item_versions", ["item_id", "label", "changelog", "published_at"],
                   [(r["id"], "1.0", "First release.", r["published_at"]) for r in versioned])
        versions = dict(conn.execute("SELECT item_id, id FROM item_versions").fetchall())
        uploads = []
        for r in versioned:
            filename, mime = MIMES[r["type"]]
            key = pid()
            uploads.append((key, r["creator_id"], r["id"], versions[r["id"]], "file", filename, 3_500_000,
                            "ready", f"uploads/{key}/{filename}", mime, "[]"))
        for r in rows:
            if r["cover"]:
                key = pid()
                uploads.append((key, r["creator_id"], r["id"], None, "cover", "cover.png", 250_000, "ready",
                                f"uploads/{key}/cover.png", "image/png", json.dumps(THUMBS)))
        avatar = pid()
        uploads.append((avatar, ids[FEATURED[0]], None, None, "avatar", "me.png", 80_000, "ready",
                        f"uploads/{avatar}/me.png", "image/png", json.dumps(THUMBS)))
        _copy_rows(conn, "uploads", UPLOAD_COPY_COLUMNS, uploads)
        conn.execute("UPDATE items i SET cover_upload_id = u.id FROM uploads u "
                     "WHERE u.item_id = i.id AND u.purpose = 'cover'")
        conn.execute("UPDATE creators SET avatar_upload_id = (SELECT id FROM uploads WHERE public_id = %s) "
                     "WHERE user_id = %s", (avatar, ids[FEATURED[0]]))
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return describe(url, rows[0]["public_id"], FEATURED[0])


def describe(url: str, public_id: str, username: str) -> Catalogue:
    """Row counts, the creator's listed items, and what the measured item has."""
    with psycopg.connect(url) as conn:
        def one(sql: str, params: tuple[Any, ...] = ()) -> Any:
            row = conn.execute(sql, params).fetchone()  # type: ignore[arg-type]
            assert row is not None, sql
            return row

        totals = {t: one(f"SELECT count(*) FROM {t}")[0]
                  for t in ("users", "projects", "items", "item_versions", "uploads")}
        listed = one("SELECT count(*) FROM items i JOIN users u ON u.id = i.creator_id WHERE u.username = %s "
                     "AND i.status = 'published' AND i.deleted_at IS NULL", (username,))[0]
        item = one("SELECT i.type, i.price_mode, i.status, i.project_id IS NOT NULL, "
                   "i.cover_upload_id IS NOT NULL, i.tags::text[], (SELECT count(*) FROM item_versions v "
                   "WHERE v.item_id = i.id AND v.published_at IS NOT NULL), length(i.description_html) "
                   "FROM items i WHERE i.public_id = %s", (public_id,))
    keys = ("type", "price_mode", "status", "in_project", "has_cover", "tags", "published_versions",
            "description_html_chars")
    return Catalogue(public_id, username, listed, totals, dict(zip(keys, item, strict=True)))


def decorate_catalog_db(url: str) -> Catalogue:
    """In seed_catalog.py's 1M-item database (which has no projects, covers or versions), take the busiest
    creator's newest published item and give it a project, a ready cover, and one published version with a
    ready file, once (rows named 'pagebench…'). It writes at most 5 rows; search results don't change."""
    with psycopg.connect(url) as conn:
        done = conn.execute("SELECT i.public_id, u.username::text FROM items i "
                            "JOIN projects p ON p.id = i.project_id JOIN users u ON u.id = i.creator_id "
                            "WHERE p.public_id = 'pagebenchproj'").fetchone()
        if done:
            return describe(url, *done)
        busiest = conn.execute(
            "SELECT u.username::text, u.id FROM items i JOIN users u ON u.id = i.creator_id WHERE i.status = "
            "'published' AND i.deleted_at IS NULL GROUP BY u.id ORDER BY count(*) DESC LIMIT 1").fetchone()
        if busiest is None:
            raise RuntimeError("the catalog database has no published items; run seed_catalog.py first")
        username, creator_id = busiest
        item_id, public_id, kind = conn.execute(  # type: ignore[misc]
            "SELECT id, public_id, type FROM items WHERE creator_id = %s AND status = 'published' "
            "AND deleted_at IS NULL ORDER BY published_at DESC, id DESC LIMIT 1", (creator_id,)).fetchone()

        def insert(sql: str, params: tuple[Any, ...]) -> int:
            return conn.execute(sql + " RETURNING id", params).fetchone()[0]  # type: ignore[index]

        project_id = insert("INSERT INTO projects (public_id, creator_id, name, slug) "
                            "VALUES ('pagebenchproj', %s, 'Bench Sessions', 'bench-sessions')", (creator_id,))
        upload = ("INSERT INTO uploads (public_id, creator_id, item_id, version_id, purpose, filename, "
                  "size_bytes, state, storage_key, mime, thumbnails) "
                  "VALUES (%s, %s, %s, %s, %s, %s, %s, 'ready', %s, %s, %s)")
        cover_id = insert(upload, ("pagebenchcover", creator_id, item_id, None, "cover", "cover.png", 250_000,
                                   "uploads/pagebenchcover/cover.png", "image/png", json.dumps(THUMBS)))
        if kind != "text":
            version_id = insert("INSERT INTO item_versions (item_id, label, published_at) "
                                "VALUES (%s, '1.0', now())", (item_id,))
            filename, mime = MIMES[kind]
            insert(upload, ("pagebenchfile", creator_id, item_id, version_id, "file", filename, 3_500_000,
                            f"uploads/pagebenchfile/{filename}", mime, "[]"))
        conn.execute("UPDATE items SET project_id = %s, cover_upload_id = %s WHERE id = %s",
                     (project_id, cover_id, item_id))
        conn.commit()
    return describe(url, public_id, username)


def catalog_db_url() -> str:
    """The database seed_catalog.py fills (var/bench-pg), started or joined; stopped when this process exits
    if this process started it."""
    from seed_catalog import DEFAULT_DATABASE, DEFAULT_PGDATA, bench_database

    if not (DEFAULT_PGDATA / "PG_VERSION").exists():
        raise RuntimeError(f"no catalog database at {DEFAULT_PGDATA}; run tests/bench/seed_catalog.py first")
    return bench_database(DEFAULT_PGDATA, DEFAULT_DATABASE)


# ------------------------------------------------------------------------------------------------------------
# Granian serving any ASGI target


AsgiServer = Server  # common.Server serves any ASGI factory (target=) with extra Granian options


def other_servers() -> list[str]:
    """Granian processes this script did not start (they share the CPU and skew the figures)."""
    mine = {os.getpid(), *(c.pid for c in psutil.Process().children(recursive=True))}
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "granian" in cmd and "--interface" in cmd and p.info["pid"] not in mine:
            found.append(f"{p.info['pid']}: {cmd[:120]}")
    return found


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One GET (no cookies): status, headers (lower-case names), body."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:  # 304 and errors arrive here
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


# ------------------------------------------------------------------------------------------------------------
# wrk


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(url: str, connections: int, seconds: float, threads: int = 1) -> dict[str, Any]:
    """wrk with --latency and wrk_report.lua; requests/s, latency percentiles, errors, bytes per response."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "--timeout",
               "10s", "-s", str(BENCH / "wrk_report.lua"), url]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    match = re.search(r"^WRK_JSON (\{.*\})$", out.stdout, re.M)
    if not match:
        raise RuntimeError(f"wrk gave no result (exit {out.returncode}):\n{out.stdout}\n{out.stderr}")
    raw = json.loads(match.group(1))
    seconds_run = raw["duration_us"] / 1e6
    return {
        "command": " ".join(c for c in command if not c.endswith(("-s", "wrk_report.lua"))),
        "connections": connections,
        "threads": threads,
        "requests": raw["requests"],
        "seconds": round(seconds_run, 2),
        "rps": round(raw["requests"] / seconds_run, 1),
        "p50_ms": raw["p50_us"] / 1000,
        "p90_ms": raw["p90_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
        "max_ms": raw["max_us"] / 1000,
        "socket_errors": {k: raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")},
        "errors": raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"],
        "non_2xx_3xx": raw["non_2xx_3xx"],
        "bytes_per_response": round(raw["bytes"] / raw["requests"]) if raw["requests"] else 0,
    }


# ------------------------------------------------------------------------------------------------------------
# The SQL one request sends, from PostgreSQL's own log


def with_statement_log(url: str) -> str:
    """The URL with `log_statement=all` for its connections only (libpq options), so the server's log shows
    every statement these connections send and nothing about anyone else's."""
    return url + ("&" if "?" in url else "?") + "options=-c%20log_statement%3Dall"


def pg_log_path(pgdata: Path) -> Path:
    return pgdata / "log"


# A log record starts with the embedded server's log_line_prefix, '%m [%p] ' (time, zone, pid).
_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[\d+\] ", re.M)
_STATEMENT = re.compile(r"^LOG:\s+(?:statement|execute [^:]*): (.*)", re.S)
_PARAMS = re.compile(r"^DETAIL:\s+Parameters: (.*)", re.S)


def read_statements(log_path: Path, offset: int) -> list[str]:
    """Statements logged after `offset`, each with its parameters after ' -- ', whitespace collapsed (a
    statement on several lines continues without the prefix)."""
    with log_path.open("rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
    out: list[str] = []
    for record in _RECORD.split(text)[1:]:
        if m := _STATEMENT.match(record):
            out.append(" ".join(m.group(1).split()))
        elif (p := _PARAMS.match(record)) and out:
            out[-1] += "  -- " + " ".join(p.group(1).split())
    return out


def capture_request_sql(make_server: Callable[[], Server], url_path: str,
                        log_path: Path) -> tuple[list[str], bytes, dict[str, str]]:
    """Start a 1-worker server whose connections log every statement, GET `url_path` twice (the first warms
    the pool and caches), and return the statements the second request sent, its body and headers."""
    server = make_server()
    try:
        server.start()
        fetch(server.base + url_path)
        time.sleep(0.3)
        offset = log_path.stat().st_size
        status, headers, body = fetch(server.base + url_path)
        time.sleep(0.5)  # the server writes its log asynchronously
        if status != 200:
            raise RuntimeError(f"GET {url_path} answered {status}")
        return read_statements(log_path, offset), body, headers
    finally:
        server.stop()


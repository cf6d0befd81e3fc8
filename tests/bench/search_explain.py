"""EXPLAIN (ANALYZE, BUFFERS) of the SQL that GET /search runs, for search_latency.py.

The SQL is captured in this process: the app is built with create_app, served once per URL through Litestar's
test client, and every statement its engine sends is recorded (SQLAlchemy's before_cursor_execute). Each
statement is then explained twice with the same values, and the second (warm) run counts. Each is also
explained as a prepared statement with a forced generic plan: psycopg prepares a statement on its 5th run on a
connection, and PostgreSQL may then stop planning per value.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from app.settings import Settings


def capture_sql(settings: Settings, paths: list[str]) -> dict[str, list[tuple[str, Any]]]:
    """Serve each path once in this process and record the SQL it sends (without the pool's pre-ping)."""
    from litestar.testing import TestClient
    from sqlalchemy import event

    from app.main import create_app

    app = create_app(settings)
    captured: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.strip().upper() != "SELECT 1":
            captured.append((statement, parameters))

    out: dict[str, list[tuple[str, Any]]] = {}
    with TestClient(app=app, base_url="http://127.0.0.1") as client:
        event.listen(app.state.engine.sync_engine, "before_cursor_execute", record)
        for path in paths:
            captured.clear()
            response = client.get(path)
            if response.status_code != 200:
                raise RuntimeError(f"in-process GET {path} answered {response.status_code}")
            out[path] = list(captured)
    return out


def as_prepared(statement: str, parameters: dict[str, Any]) -> tuple[str, list[Any]]:
    """SQLAlchemy's %(name)s statement as a PREPARE body with $1, $2 … and its values in that order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    body = re.sub(r"%\((\w+)\)s", number, statement).replace("%%", "%")
    return body, [parameters[name] for name in names]


def figures(plan: str) -> dict[str, Any]:
    """Execution and planning time, and the top node's shared buffers, from a text-format plan."""
    def number(pattern: str) -> float:
        match = re.search(pattern, plan)
        return float(match.group(1)) if match else 0.0

    return {"execution_ms": round(number(r"Execution Time: ([\d.]+)"), 2),
            "planning_ms": round(number(r"Planning Time: ([\d.]+)"), 2),
            "shared_hit": int(number(r"Buffers: shared hit=(\d+)")),
            "shared_read": int(number(r"Buffers: shared (?:hit=\d+ )?read=(\d+)"))}


def explain(url: str, statements: list[tuple[str, Any]], generic: bool = False) -> list[dict[str, Any]]:
    """EXPLAIN (ANALYZE, BUFFERS) each statement twice; the second (warm) run counts."""
    out = []
    with psycopg.connect(url, autocommit=True) as conn:
        for statement, parameters in statements:
            try:
                args = None
                if generic:
                    body, values = as_prepared(statement, parameters or {})
                    conn.execute("DEALLOCATE ALL")
                    conn.execute("SET plan_cache_mode = force_generic_plan")
                    conn.execute(f"PREPARE bench_statement AS {body}")
                    arguments = sql.SQL(", ").join(map(sql.Literal, values))
                    query: Any = sql.SQL("EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_statement{}").format(
                        sql.SQL("({})").format(arguments) if values else sql.SQL(""))
                elif parameters:
                    query, args = "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
                else:  # without parameters psycopg leaves %% alone
                    query = "EXPLAIN (ANALYZE, BUFFERS) " + statement.replace("%%", "%")
                for _ in range(2):
                    plan = "\n".join(r[0] for r in conn.execute(query, args))
            except psycopg.Error as exc:
                plan = f"(could not explain: {type(exc).__name__}: {str(exc).strip()})"
            finally:
                if generic:
                    conn.execute("RESET plan_cache_mode")
            out.append({"sql": " ".join(statement.split()), **figures(plan), "plan": plan})
    return out


def explain_cases(url: str, settings: Settings, cases: list[dict[str, Any]],
                  folder: Path | None) -> dict[str, Any]:
    """Per case: the statements its request runs, their warm execution times (custom and generic plans), and
    the full plans written to `folder`/search-explain-<time>.txt."""
    captured = capture_sql(settings, [c["path"] for c in cases])
    results: dict[str, Any] = {}
    lines: list[str] = []
    for c in cases:
        statements = captured[c["path"]]
        plans = explain(url, statements)
        generic = explain(url, statements, generic=True)
        results[c["label"]] = {
            "statements": len(plans),
            "total_execution_ms": round(sum(p["execution_ms"] for p in plans), 1),
            "total_planning_ms": round(sum(p["planning_ms"] for p in plans), 1),
            "generic_total_execution_ms": round(sum(p["execution_ms"] for p in generic), 1),
            "per_statement": [{k: v for k, v in p.items() if k != "plan"} for p in plans],
            "generic_per_statement_ms": [p["execution_ms"] for p in generic],
        }
        lines.append(f"######## {c['label']}: GET {c['path']}")
        for i, (p, g) in enumerate(zip(plans, generic, strict=True), 1):
            lines += [f"--- statement {i}: {p['execution_ms']} ms (generic plan: {g['execution_ms']} ms)",
                      p["sql"], "", p["plan"], "",
                      "--- the same as a prepared statement, forced generic plan", g["plan"], ""]
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"search-explain-{datetime.now().strftime('%Y%m%d-%H%M%S')}.txt"
        path.write_text("\n".join(lines))
        results["plans_file"] = str(path)
    return results


def report(explained: dict[str, Any]) -> list[str]:
    if "error" in explained:
        return ["", f"EXPLAIN skipped: {explained['error']}"]
    lines = ["", "== EXPLAIN (ANALYZE, BUFFERS) of each request's SQL, warm: ms per statement, in order "
                 "(custom plans | forced generic plans) =="]
    for label, e in explained.items():
        if label == "plans_file":
            continue
        per = ", ".join(f"{p['execution_ms']:.1f}" for p in e["per_statement"])
        generic = ", ".join(f"{g:.1f}" for g in e["generic_per_statement_ms"])
        lines.append(f"  {label:<40} {e['total_execution_ms']:>7.1f} ms [{per}] | "
                     f"{e['generic_total_execution_ms']:.1f} [{generic}]")
    slowest = sorted(((p["execution_ms"], label, p["sql"]) for label, e in explained.items()
                      if label != "plans_file" for p in e["per_statement"]), reverse=True)
    seen: set[str] = set()
    lines.append("  slowest statements (one per kind):")
    for ms, label, statement in slowest:
        kind = statement[:90]
        if kind in seen or len(seen) >= 4:
            continue
        seen.add(kind)
        lines.append(f"    {ms:7.1f} ms  {label}: {statement[:150]}…")
    if "plans_file" in explained:
        lines.append(f"  full plans: {explained['plans_file']}")
    return lines

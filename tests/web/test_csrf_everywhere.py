"""CSRF on every unsafe request, checked from the route table: each POST/PUT/PATCH/DELETE route the app has,
requested by a signed-in creator and admin without the token, is refused with 403 and changes nothing. The only
exceptions are the processor's webhooks, which are signed instead (and refuse an unsigned request with 400). A
route added later is covered by this test without being listed here."""

from __future__ import annotations

import re

import pytest

from app.main import create_app
from tests.catalog.conftest import become_creator, new_item

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
SIGNED_BY_THE_PROCESSOR = {"/webhooks/stripe", "/webhooks/stripe/connect"}
PARAM = re.compile(r"\{(\w+):(\w+)\}")


def unsafe_routes(settings) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    app = create_app(settings)
    found = set()
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for method in set(getattr(handler, "http_methods", None) or ()) & UNSAFE:
                found.add((method, route.path))
    return sorted(found)


def concrete(path: str, item_id: str) -> str:
    """A request path for a route: the creator's own item where a route names an item (so ownership checks pass
    and the token is what is missing), numbers for int parameters, an id-shaped word for the others."""
    if path.startswith("/creator/items/{public_id"):
        path = path.replace("{public_id:str}", item_id)
    return PARAM.sub(lambda m: "1" if m.group(2) == "int" else "abcdefghjkmn", path)


def table_rows(db) -> dict[str, int]:  # type: ignore[no-untyped-def]
    tables = [r[0] for r in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                                       "AND tablename NOT IN ('alembic_version', 'user_sessions')")]
    return {t: db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def test_every_unsafe_route_refuses_a_request_without_the_csrf_token(client, settings, db):
    become_creator(client, "maker")
    item_id = new_item(client, "audio", title="Forgery target")
    db.execute("UPDATE users SET is_admin = true WHERE username = 'maker'")
    assert "fairshelf_csrf" in client.cookies  # the browser has the cookie; the forged request lacks the token
    routes = unsafe_routes(settings)
    assert len(routes) > 30 and {p for _, p in routes} >= SIGNED_BY_THE_PROCESSOR
    before = table_rows(db)

    answers = {}
    for method, path in routes:
        # A multipart form with a file, as a forged upload would be; the other routes read it as a form.
        response = client.request(method, concrete(path, item_id), data={"reason": "forged", "username": "maker",
                                                                          "amount": "5.00", "tier": "basic"},
                                  files={"file": ("forged.mp3", b"ID3" + b"\0" * 64, "audio/mpeg")},
                                  follow_redirects=False)
        answers[method, path] = response.status_code
    expected = {key: 400 if key[1] in SIGNED_BY_THE_PROCESSOR else 403 for key in answers}
    assert answers == expected
    assert table_rows(db) == before


@pytest.mark.parametrize("path", sorted(SIGNED_BY_THE_PROCESSOR))
def test_the_webhooks_are_the_only_routes_without_csrf_and_need_a_signature(client, path):
    response = client.post(path, content=b'{"id": "evt_x", "object": "event"}',
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "signature" in response.json()["error"]

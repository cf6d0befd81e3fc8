"""Email leaves through the outbox: a worker process delivers it to a real (local) SMTP server, retries when
the server is down, gives up when a recipient is refused, and without SMTP keeps it in the dev mailbox."""

from __future__ import annotations

import email
import re
import socket
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

from app.mail.service import Mailer
from app.web.templating import make_environment
from app.worker import queue
from tests.conftest import log_in, post_form, sign_up
from tests.worker.helpers import Workers, run_async

FROM = "Fairshelf <hello@fairshelf.localhost>"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """An aiosmtpd handler that keeps what it receives; with `refuse`, it rejects every recipient."""

    def __init__(self, refuse: bool = False) -> None:
        self.refuse = refuse
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def by_subject(self, subject: str) -> tuple[list[str], EmailMessage]:
        found = [m for m in self.messages if m[1]["Subject"] == subject]
        assert len(found) == 1, [m[1]["Subject"] for m in self.messages]
        return found[0]


class SmtpServer:
    def __init__(self, port: int, inbox: Inbox) -> None:
        self.port = port
        self.inbox = inbox
        self.controller = Controller(inbox, hostname="127.0.0.1", port=port)

    def env(self) -> dict[str, str]:
        return {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(self.port), "SMTP_STARTTLS": "false"}


@pytest.fixture
def smtp_server() -> Iterator[Callable[..., SmtpServer]]:
    """Start local SMTP servers on demand (on a given or a free port); all are stopped at teardown."""
    started: list[SmtpServer] = []

    def start(port: int | None = None, refuse: bool = False) -> SmtpServer:
        server = SmtpServer(port or free_port(), Inbox(refuse=refuse))
        server.controller.start()
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.controller.stop()


def queue_email(settings, to: str, template: str, duplicate_jobs: int = 0, **context: object) -> int:
    """Queue a message through the real Mailer, committed like a request would."""

    async def go(sessionmaker):
        async with sessionmaker() as session:
            mailer = Mailer(settings, make_environment(settings))
            email_id = await mailer.queue(session, to, template, **context)
            for _ in range(duplicate_jobs):
                await queue.enqueue(session, "mail.send", {"email_id": email_id})
            await session.commit()
            return email_id

    return run_async(settings, go)


def outbox(db, email_id: int) -> dict:
    cursor = db.execute("SELECT * FROM emails WHERE id = %s", (email_id,))
    names = [c.name for c in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


def mail_jobs(db) -> list[tuple[str, int, str | None]]:
    return db.execute(
        "SELECT state, attempts, last_error FROM jobs WHERE kind = 'mail.send' ORDER BY id"
    ).fetchall()


def test_a_password_reset_link_is_delivered_over_smtp_and_works(client, db, workers: Workers, smtp_server):
    server = smtp_server()
    sign_up(client, "ada", "ada@example.com", display_name="Ada Lovelace")
    client.cookies.clear()
    assert post_form(client, "/forgot-password", {"email": "ada@example.com"}).status_code == 303

    workers.burst(**server.env())

    assert len(server.inbox.messages) == 2  # the sign-up's confirmation and the reset link
    recipients, message = server.inbox.by_subject("Reset your Fairshelf password")
    assert recipients == ["ada@example.com"]
    assert (message["To"], message["From"]) == ("ada@example.com", FROM)
    body = message.get_content()
    assert body.startswith("Hi Ada Lovelace,")
    token = re.search(r"http://testserver\.local/reset-password\?token=(\S+)", body).group(1)
    recipients, _ = server.inbox.by_subject("Confirm your email for Fairshelf")
    assert recipients == ["ada@example.com"]

    rows = db.execute("SELECT template, state, attempts, last_error, sent_at IS NOT NULL "
                      "FROM emails ORDER BY id")
    assert rows.fetchall() == [
        ("verify_email", "sent", 1, None, True),
        ("password_reset", "sent", 1, None, True),
    ]
    assert mail_jobs(db) == [("done", 1, None), ("done", 1, None)]

    # The link that arrived by mail is the one that resets the password.
    reset = post_form(client, "/reset-password", {"token": token, "password": "a brand new passphrase"})
    assert reset.status_code == 303
    assert log_in(client, "ada", "a brand new passphrase").status_code == 303


def test_a_message_is_delivered_once_even_when_two_send_jobs_race_for_it(settings, db, workers, smtp_server):
    server = smtp_server()
    email_id = queue_email(settings, "bea@example.com", "password_changed", duplicate_jobs=2,
                           display_name="Bea")
    workers.burst(**server.env())
    assert [m["Subject"] for _, m in server.inbox.messages] == ["Your Fairshelf password was changed"]
    assert outbox(db, email_id)["state"] == "sent"
    assert [state for state, _, _ in mail_jobs(db)] == ["done", "done", "done"]


def test_a_server_that_is_down_leaves_the_email_queued_for_a_retry_that_delivers_it(settings, db, workers,
                                                                                     smtp_server):
    port = free_port()  # nothing listens there yet: connection refused
    email_id = queue_email(settings, "bob@example.com", "password_changed", display_name="Bob")
    down = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_STARTTLS": "false"}

    workers.burst(**down)
    [(state, attempts, last_error)] = mail_jobs(db)
    assert (state, attempts) == ("queued", 1)
    assert "ConnectionRefusedError" in last_error
    assert db.execute("SELECT run_at > now() FROM jobs WHERE kind = 'mail.send'").fetchone()[0]
    row = outbox(db, email_id)
    assert (row["state"], row["sent_at"]) == ("queued", None)

    server = smtp_server(port)
    # Instead of waiting out the back-off:
    db.execute("UPDATE jobs SET run_at = now() WHERE kind = 'mail.send'")
    workers.burst(**server.env())
    [(recipients, message)] = server.inbox.messages
    assert recipients == ["bob@example.com"] and message["Subject"] == "Your Fairshelf password was changed"
    assert "Hi Bob," in message.get_content()
    assert mail_jobs(db) == [("done", 2, None)]
    row = outbox(db, email_id)
    assert (row["state"], row["attempts"]) == ("sent", 2) and row["sent_at"] is not None


def test_a_refused_recipient_fails_the_email_without_retrying(settings, db, workers: Workers, smtp_server):
    server = smtp_server(refuse=True)
    email_id = queue_email(settings, "nobody@example.com", "password_changed", display_name="Nobody")
    workers.burst(**server.env())
    assert server.inbox.messages == []
    row = outbox(db, email_id)
    assert row["state"] == "failed" and "No such mailbox here" in row["last_error"] and row["sent_at"] is None
    assert mail_jobs(db) == [("done", 1, None)]  # finished: retrying would be refused again


def test_without_smtp_the_message_is_kept_in_the_development_mailbox(client, db, workers: Workers):
    sign_up(client, "cyd", "cyd@example.com", display_name="Cyd")
    email_id = db.execute("SELECT id FROM emails WHERE template = 'verify_email'").fetchone()[0]
    assert "<td>queued</td>" in client.get("/dev/mail").text

    workers.burst(SMTP_HOST="")
    assert outbox(db, email_id)["state"] == "sent"
    assert mail_jobs(db) == [("done", 1, None)]

    mailbox = client.get("/dev/mail")
    assert mailbox.status_code == 200
    assert "<td>cyd@example.com</td>" in mailbox.text
    assert "<td>sent</td>" in mailbox.text and "<td>queued</td>" not in mailbox.text
    assert f'href="/dev/mail/{email_id}">Confirm your email for Fairshelf</a>' in mailbox.text

    page = client.get(f"/dev/mail/{email_id}")
    assert page.status_code == 200
    assert "Hi Cyd," in page.text and "http://testserver.local/verify-email?token=" in page.text
    assert client.get(f"/dev/mail/{email_id + 1000}").status_code == 404

"""Writing email into the outbox (in the caller's transaction) and delivering it from the worker."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import make_msgid

import jinja2
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.mail.models import Email
from app.settings import Settings
from app.worker.queue import enqueue


class Mailer:
    """Renders `templates/mail/<name>.txt` (first line `Subject: …`) into an outbox row plus a send job."""

    def __init__(self, settings: Settings, env: jinja2.Environment) -> None:
        self.settings = settings
        self.env = env

    async def queue(self, session: AsyncSession, to: str, template: str, **context: object) -> int:
        rendered = self.env.get_template(f"mail/{template}.txt").render(base_url=self.settings.base_url, **context)
        first, _, body = rendered.partition("\n")
        subject = first.removeprefix("Subject:").strip()
        email = Email(to_address=to, subject=subject[:200], text_body=body.strip() + "\n", template=template)
        session.add(email)
        await session.flush()
        await enqueue(session, "mail.send", {"email_id": email.id})
        return email.id


def smtp_send(settings: Settings, email: Email) -> None:
    """Blocking SMTP delivery (run in a thread by the job)."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = email.to_address
    message["Subject"] = email.subject
    message["Message-ID"] = make_msgid(idstring=f"fairshelf-{email.id}")
    message.set_content(email.text_body)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password)
        smtp.send_message(message)


async def recent(session: AsyncSession, limit: int = 100) -> list[Email]:
    return list(await session.scalars(select(Email).order_by(Email.id.desc()).limit(limit)))

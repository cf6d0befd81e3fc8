"""Background delivery of queued email."""

from __future__ import annotations

import smtplib
from datetime import UTC, datetime

import anyio.to_thread

from app.mail.models import Email
from app.mail.service import smtp_send
from app.worker.queue import JobContext


async def send_email(ctx: JobContext) -> None:
    settings = ctx.resources.settings
    email = await ctx.session.get(Email, ctx.job.payload["email_id"], with_for_update=True)
    if email is None or email.state != "queued":
        return  # already sent by an earlier run, or deleted
    email.attempts = ctx.job.attempts
    if settings.smtp_host:
        try:
            await anyio.to_thread.run_sync(smtp_send, settings, email)
        except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
            # The server said no for good: record it and finish; retrying would not help.
            email.state, email.last_error = "failed", str(exc)[:2000]
            return
    # Without SMTP (development), the message stays readable in the development mailbox at /dev/mail.
    email.state, email.sent_at = "sent", datetime.now(UTC)


JOBS = {"mail.send": send_email}

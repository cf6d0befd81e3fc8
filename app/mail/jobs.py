"""Background delivery of queued email."""

from __future__ import annotations

import smtplib
from datetime import UTC, datetime

import anyio.to_thread
from sqlalchemy import update

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
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500 and not isinstance(exc, smtplib.SMTPAuthenticationError):
                email.state, email.last_error = "failed", f"{exc.smtp_code} {exc.smtp_error!r}"[:2000]
                return
            await _note_attempt(ctx, email.id, exc)
            raise
        except Exception as exc:
            await _note_attempt(ctx, email.id, exc)
            raise
    # Without SMTP (development), the message stays readable in the development mailbox at /dev/mail.
    email.state, email.sent_at = "sent", datetime.now(UTC)


async def _note_attempt(ctx: JobContext, email_id: int, exc: Exception) -> None:
    """Keep the failed attempt on the email itself. The job's transaction (which holds the email's row lock)
    is rolled back first and this note committed on its own, before the job is retried."""
    await ctx.session.rollback()
    await ctx.session.execute(
        update(Email).where(Email.id == email_id)
        .values(attempts=ctx.job.attempts, last_error=f"{type(exc).__name__}: {exc}"[:2000])
    )
    await ctx.session.commit()


JOBS = {"mail.send": send_email}

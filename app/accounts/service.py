"""Accounts: sign-up, log-in with throttling, passwords, email verification and password reset."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import sessions, throttle
from app.accounts.forms import ChangePasswordForm, LoginForm, ResetPasswordForm, SignupForm, check_username
from app.accounts.models import User
from app.accounts.passwords import Passwords
from app.mail.service import Mailer
from app.settings import Settings
from app.web.errors import AppError, FormInvalid, NotFound, Throttled
from app.web.forms import Errors

RESET_MINUTES = 60
VERIFY_DAYS = 7


@dataclass(frozen=True, slots=True)
class Accounts:
    """The accounts service; one per app, holding what its operations need besides a database session."""

    settings: Settings
    passwords: Passwords
    mailer: Mailer

    def _tokens(self, purpose: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.settings.secret_key, salt=f"accounts.{purpose}")

    async def signup(self, db: AsyncSession, form: SignupForm) -> User:
        taken = (
            await db.execute(
                select(User.email, User.username).where(
                    or_(User.email == form.email, User.username == form.username)
                )
            )
        ).all()
        errors = {}
        for email, username in taken:
            if email.lower() == form.email.lower():
                errors["email"] = "An account with this email already exists. Log in, or reset your password."
            if username.lower() == form.username:
                errors["username"] = "That username is taken; please pick another."
        values = {"email": form.email, "username": form.username, "display_name": form.display_name}
        if errors:
            raise FormInvalid(errors, values)
        user = User(
            email=form.email,
            username=form.username,
            display_name=form.display_name,
            password_hash=await self.passwords.hash(form.password),
        )
        db.add(user)
        try:
            await db.flush()
        except IntegrityError:
            # Someone took the name or email between our check and the insert.
            await db.rollback()
            raise FormInvalid({"username": "That username or email was just taken; please try another."}, values) from None
        await self._send_verification(db, user)
        return user

    async def username_problem(self, db: AsyncSession, raw: str) -> tuple[str, str | None]:
        """The normalised username and what is wrong with it (malformed, reserved or taken), if anything."""
        errors = Errors()
        username = check_username(errors, raw)
        if not errors.fields and await db.scalar(select(User.id).where(User.username == username)):
            errors.add("username", "That username is taken; please pick another.")
        return username, errors.fields.get("username")

    async def authenticate(self, db: AsyncSession, form: LoginForm, ip: str) -> User:
        """The user for these credentials; the same message (and about the same time) whether or not it exists."""
        identifier = form.identifier.lower()
        account_key, ip_key = f"login:account:{identifier}", f"login:ip:{ip}"
        wait = await throttle.register_attempt(db, counted=[account_key], checked=[ip_key])
        if wait:
            raise Throttled(f"Too many login attempts. Try again in {_duration(wait)}.", wait)
        user = await db.scalar(
            select(User).where(or_(func.lower(User.email) == identifier, User.username == identifier))
        )
        ok, rehash = await self.passwords.verify(user.password_hash if user else None, form.password)
        if not ok or user is None:
            await throttle.record_failure(db, [ip_key])
            raise FormInvalid(
                {"password": "That email or username and password do not match."},
                {"identifier": form.identifier, "next": form.next},
            )
        if rehash:
            user.password_hash = rehash
        await throttle.forgive(db, [account_key])
        return user

    async def change_password(self, db: AsyncSession, user_id: int, form: ChangePasswordForm) -> User:
        user = await db.get(User, user_id, with_for_update=True)
        if user is None:
            raise NotFound("That account no longer exists.")
        ok, _ = await self.passwords.verify(user.password_hash, form.current_password)
        if not ok:
            raise FormInvalid({"current_password": "Your current password is not right."})
        await self._set_password(db, user, form.new_password)
        await self.mailer.queue(db, user.email, "password_changed", display_name=user.display_name)
        return user

    async def _set_password(self, db: AsyncSession, user: User, password: str) -> None:
        user.password_hash = await self.passwords.hash(password)
        user.password_changed_at = datetime.now(UTC)
        # A new password ends every session; the caller opens a fresh one where the person stays signed in.
        await sessions.end_others(db, user.id, keep_session_id=None)

    async def request_password_reset(self, db: AsyncSession, email: str) -> None:
        """Email a reset link if the address has an account; say nothing either way."""
        user = await db.scalar(select(User).where(User.email == email))
        if user is None:
            return
        token = self._tokens("reset").dumps({"u": user.id, "f": _fingerprint(user.password_hash)})
        await self.mailer.queue(
            db, user.email, "password_reset", display_name=user.display_name, token=token, minutes=RESET_MINUTES
        )

    async def check_reset_token(self, db: AsyncSession, token: str) -> User:
        try:
            data = self._tokens("reset").loads(token, max_age=RESET_MINUTES * 60)
        except SignatureExpired:
            raise AppError("This reset link has expired. Ask for a new one below.") from None
        except BadSignature:
            raise AppError("This reset link is not valid. Ask for a new one below.") from None
        user = await db.get(User, data.get("u"), with_for_update=True)
        # The token carries a fingerprint of the password it replaces, so it stops working once used.
        if user is None or data.get("f") != _fingerprint(user.password_hash):
            raise AppError("This reset link was already used. Ask for a new one if you need it.")
        return user

    async def reset_password(self, db: AsyncSession, form: ResetPasswordForm) -> User:
        user = await self.check_reset_token(db, form.token)
        await self._set_password(db, user, form.password)
        if user.email_verified_at is None:
            user.email_verified_at = datetime.now(UTC)  # they proved they read this inbox
        return user

    async def send_verification(self, db: AsyncSession, user_id: int) -> None:
        user = await db.get(User, user_id)
        if user is not None and user.email_verified_at is None:
            await self._send_verification(db, user)

    async def _send_verification(self, db: AsyncSession, user: User) -> None:
        token = self._tokens("verify").dumps({"u": user.id, "e": user.email})
        await self.mailer.queue(db, user.email, "verify_email", display_name=user.display_name, token=token)

    async def verify_email(self, db: AsyncSession, token: str) -> User:
        try:
            data = self._tokens("verify").loads(token, max_age=VERIFY_DAYS * 86400)
        except SignatureExpired:
            raise AppError("This confirmation link has expired. Log in and ask for a new one.") from None
        except BadSignature:
            raise AppError("This confirmation link is not valid.") from None
        user = await db.get(User, data.get("u"))
        if user is None or user.email.lower() != str(data.get("e", "")).lower():
            raise AppError("This confirmation link is for an address that is no longer on the account.")
        if user.email_verified_at is None:
            await db.execute(update(User).where(User.id == user.id).values(email_verified_at=func.now()))
        return user


def _fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"

"""Account forms and their validation rules."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.web.forms import Errors, clean_text

USERNAME = re.compile(r"[a-z0-9_]{3,30}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PASSWORD_MIN, PASSWORD_MAX = 10, 128
RESERVED_USERNAMES = {
    "admin", "administrator", "api", "account", "dev", "fairshelf", "health", "help", "library", "login", "logout",
    "metrics", "root", "search", "settings", "signup", "static", "support", "system", "webhooks", "www",
}


def email_field(errors: Errors, value: str) -> str:
    email = clean_text(value)
    if not email:
        errors.add("email", "Email is required.")
    elif len(email) > 254 or not EMAIL.fullmatch(email):
        errors.add("email", "Enter a valid email address, like name@example.com.")
    return email


def _new_password(errors: Errors, value: str, field: str = "password") -> str:
    if len(value) < PASSWORD_MIN:
        errors.add(field, f"Password must be at least {PASSWORD_MIN} characters.")
    elif len(value) > PASSWORD_MAX:
        errors.add(field, f"Password must be at most {PASSWORD_MAX} characters.")
    return value


def check_username(errors: Errors, value: str) -> str:
    username = clean_text(value).lower()
    if not username:
        errors.add("username", "Username is required.")
    elif not USERNAME.fullmatch(username):
        errors.add("username", "Username must be 3–30 characters: lowercase letters, digits and underscores.")
    elif username in RESERVED_USERNAMES:
        errors.add("username", "That username is reserved; please pick another.")
    return username


@dataclass(frozen=True, slots=True)
class SignupForm:
    email: str
    username: str
    display_name: str
    password: str

    @classmethod
    def parse(cls, data: dict[str, str]) -> SignupForm:
        errors = Errors()
        email = email_field(errors, data.get("email", ""))
        username = check_username(errors, data.get("username", ""))
        display_name = clean_text(data.get("display_name", ""))
        errors.length("display_name", display_name, "Display name", 1, 60)
        password = _new_password(errors, data.get("password", ""))
        errors.raise_if_any({"email": email, "username": username, "display_name": display_name,
                             "next": data.get("next", "")})
        return cls(email=email, username=username, display_name=display_name, password=password)


@dataclass(frozen=True, slots=True)
class LoginForm:
    identifier: str
    password: str
    next: str

    @classmethod
    def parse(cls, data: dict[str, str]) -> LoginForm:
        errors = Errors()
        identifier = clean_text(data.get("identifier", ""))
        errors.length("identifier", identifier, "Email or username", 1, 254)
        password = data.get("password", "")
        if not password:
            errors.add("password", "Password is required.")
        elif len(password) > PASSWORD_MAX:
            errors.add("password", f"Password must be at most {PASSWORD_MAX} characters.")
        next_url = safe_next(data.get("next", ""))
        errors.raise_if_any({"identifier": identifier, "next": next_url})
        return cls(identifier=identifier, password=password, next=next_url)


@dataclass(frozen=True, slots=True)
class ChangePasswordForm:
    current_password: str
    new_password: str

    @classmethod
    def parse(cls, data: dict[str, str]) -> ChangePasswordForm:
        errors = Errors()
        current = data.get("current_password", "")
        if not current:
            errors.add("current_password", "Enter your current password.")
        new = _new_password(errors, data.get("new_password", ""), "new_password")
        errors.raise_if_any({})
        return cls(current_password=current, new_password=new)


@dataclass(frozen=True, slots=True)
class ForgotPasswordForm:
    email: str

    @classmethod
    def parse(cls, data: dict[str, str]) -> ForgotPasswordForm:
        errors = Errors()
        email = email_field(errors, data.get("email", ""))
        errors.raise_if_any({"email": email})
        return cls(email=email)


@dataclass(frozen=True, slots=True)
class ResetPasswordForm:
    token: str
    password: str

    @classmethod
    def parse(cls, data: dict[str, str]) -> ResetPasswordForm:
        errors = Errors()
        token = data.get("token", "")
        password = _new_password(errors, data.get("password", ""))
        errors.raise_if_any({"token": token})
        return cls(token=token, password=password)


def safe_next(value: str) -> str:
    """A local path to return to after logging in; anything else (another site, a scheme) becomes '/'."""
    value = value.strip()
    if not value.startswith("/") or value.startswith("//") or "\\" in value or any(ord(c) < 32 for c in value):
        return "/"
    return value[:500]

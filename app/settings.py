"""Settings read from the environment (and an optional .env file) into one object passed to create_app."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values

Mode = Literal["development", "test", "production"]
ROOT = Path(__file__).resolve().parent.parent
WEAK_SECRETS = {"", "change-me", "changeme", "secret", "dev", "development", "fairshelf"}


class InsecureSettings(RuntimeError):
    """Production settings that must not be used; the message names every problem."""


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class Settings:
    mode: Mode = "development"
    debug: bool = False
    secret_key: str = "development-only-secret-key-not-for-production"
    base_url: str = "http://127.0.0.1:8000"
    # Unset in development: `python -m app dev` starts an embedded PostgreSQL and fills this in.
    database_url: str = ""
    # Turn off server-side prepared statements when PostgreSQL sits behind PgBouncer in transaction mode.
    db_prepared_statements: bool = True
    db_pool_size: int = 10
    db_max_overflow: int = 5
    var_dir: Path = ROOT / "var"
    # Mail: SMTP when smtp_host is set; otherwise the development mailbox at /dev/mail keeps the messages.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    mail_from: str = "Fairshelf <hello@fairshelf.localhost>"
    dev_mailbox: bool = True
    # Proxies whose X-Forwarded-For we believe (Caddy on the same host by default).
    trusted_proxies: tuple[str, ...] = ("127.0.0.1", "::1")
    session_idle_days: int = 7
    session_absolute_days: int = 30
    # Argon2id cost, at or above OWASP's minimum (m=19 MiB, t=2, p=1).
    argon2_memory_kib: int = 19456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    worker_concurrency: int = 4
    worker_lease_seconds: int = 60
    worker_poll_seconds: float = 5.0
    web_workers: int = 1
    # Anonymous public pages are kept in each web worker's memory this long (0 turns the micro-cache off), then
    # served stale for up to page_cache_stale_seconds while one request renders the new copy.
    page_cache_seconds: float = 2.0
    page_cache_stale_seconds: float = 30.0
    # The tier whose limits apply until a creator's chosen tier is paid for.
    default_tier: str = "basic"
    # Object storage: "local" keeps files under var/media and serves them through signed URLs; "s3" uses a bucket.
    storage: str = "local"
    s3_endpoint_url: str = ""
    s3_region: str = "us-east-1"
    s3_bucket: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    # The address browsers use for signed links, when it differs from the one the app talks to.
    s3_public_endpoint_url: str = ""
    s3_connect_timeout: float = 3.0
    s3_read_timeout: float = 10.0
    s3_max_attempts: int = 3
    # Payments: Stripe when stripe_secret_key is set; otherwise the development processor at /dev/checkout, which
    # signs its events with stripe_webhook_secret (derived from secret_key when unset) and refuses production.
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    # Where the Stripe client sends API calls (empty: Stripe itself); tests point it at a local fake.
    stripe_api_base: str = ""
    # Creators whose tier subscription is past due keep uploading this many days before the default tier applies.
    tier_grace_days: int = 7
    # Connect events (account.updated) may come to their own endpoint, /webhooks/stripe/connect, signed with this.
    stripe_connect_webhook_secret: str = ""
    # Getting paid: a sale's credit becomes available after the hold (so refunds can still come out of it); every
    # interval (counted from the Unix epoch, so weekly means Thursdays 00:00 UTC) creators whose available balance
    # reaches the minimum are paid. A payout the processor keeps refusing gives up after payout_max_attempts.
    payout_hold_days: int = 7
    payout_interval_days: int = 7
    payout_minimum_cents: int = 1000
    payout_max_attempts: int = 8
    host: str = "127.0.0.1"
    port: int = 8000

    @property
    def secure_cookies(self) -> bool:
        return self.mode == "production" or self.base_url.startswith("https://")

    @property
    def payments(self) -> str:
        """Which payment processor is in use: "stripe" or the development processor "dev"."""
        return "stripe" if self.stripe_secret_key else "dev"

    @property
    def livemode(self) -> bool:
        """Whether real money moves: only with a live Stripe key. Events from the other mode are refused."""
        return self.stripe_secret_key.startswith(("sk_live_", "rk_live_"))

    @property
    def webhook_secret(self) -> str:
        if self.stripe_webhook_secret:
            return self.stripe_webhook_secret
        digest = hashlib.sha256(f"fairshelf-dev-webhook:{self.secret_key}".encode()).hexdigest()
        return f"whsec_dev_{digest[:32]}"

    @property
    def connect_webhook_secret(self) -> str:
        """The Connect endpoint's secret: its own when configured, else the main endpoint's."""
        return self.stripe_connect_webhook_secret or self.webhook_secret

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the psycopg 3 driver named, as SQLAlchemy wants it."""
        url = self.database_url
        for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url

    @property
    def libpq_url(self) -> str:
        """The database URL without a driver name, for psycopg and libpq tools."""
        return "postgresql://" + self.sqlalchemy_url.removeprefix("postgresql+psycopg://")

    def problems(self) -> list[str]:
        """What makes these settings unfit for production (empty when fine or not in production)."""
        if self.mode != "production":
            return []
        found = []
        if self.secret_key.lower() in WEAK_SECRETS or len(self.secret_key) < 32 or "development" in self.secret_key:
            found.append("SECRET_KEY is missing or weak: set at least 32 random characters")
        if self.debug:
            found.append("DEBUG is on: turn it off in production")
        if self.dev_mailbox or not self.smtp_host:
            found.append("the development mailbox is enabled: set SMTP_HOST and DEV_MAILBOX=false")
        if not self.database_url:
            found.append("DATABASE_URL is not set")
        if self.default_tier not in ("basic", "small_files", "big_files", "everything"):
            found.append("DEFAULT_TIER must be basic, small_files, big_files or everything")
        if self.storage not in ("local", "s3"):
            found.append("STORAGE must be local or s3")
        elif self.storage == "s3" and not self.s3_bucket:
            found.append("STORAGE=s3 needs S3_BUCKET")
        if not self.stripe_secret_key:
            found.append("STRIPE_SECRET_KEY is not set: the development payment processor cannot run in production")
        elif not self.stripe_webhook_secret:
            found.append("STRIPE_WEBHOOK_SECRET is not set: webhooks could not be verified")
        if self.payout_interval_days < 1 or self.payout_minimum_cents < 100 or self.payout_hold_days < 0:
            found.append("PAYOUT_INTERVAL_DAYS must be ≥ 1, PAYOUT_MINIMUM_CENTS ≥ 100 and PAYOUT_HOLD_DAYS ≥ 0")
        if not self.base_url.startswith("https://"):
            found.append("BASE_URL must be an https:// address in production")
        return found

    def check(self) -> Settings:
        problems = self.problems()
        if problems:
            raise InsecureSettings("Refusing to start in production: " + "; ".join(problems) + ".")
        return self

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, env_file: Path | None = ROOT / ".env") -> Settings:
        """Build settings from `environ` (default os.environ) over the optional .env file."""
        values: dict[str, str] = {}
        if env_file is not None and env_file.is_file():
            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        kwargs: dict[str, object] = {}
        for f in fields(cls):
            raw = values.get(f.name.upper())
            if raw is None:
                continue
            kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
            if kind == "bool":
                kwargs[f.name] = _bool(raw)
            elif kind == "int":
                kwargs[f.name] = int(raw)
            elif kind == "float":
                kwargs[f.name] = float(raw)
            elif kind == "Path":
                kwargs[f.name] = Path(raw)
            elif kind.startswith("tuple"):
                kwargs[f.name] = tuple(p.strip() for p in raw.split(",") if p.strip())
            else:
                kwargs[f.name] = raw
        mode = kwargs.get("mode", "development")
        if mode not in ("development", "test", "production"):
            raise InsecureSettings(f"MODE must be development, test or production, not {mode!r}.")
        if mode == "production" and "dev_mailbox" not in kwargs:
            kwargs["dev_mailbox"] = False
        return cls(**kwargs)  # type: ignore[arg-type]

from __future__ import annotations

import pytest

from app.main import create_app
from app.settings import InsecureSettings, Settings

GOOD = {
    "MODE": "production",
    "SECRET_KEY": "s" * 20 + "0123456789abcdefghij",
    "DATABASE_URL": "postgresql://fairshelf@db/fairshelf",
    "BASE_URL": "https://fairshelf.example",
    "SMTP_HOST": "smtp.example",
    "STRIPE_SECRET_KEY": "sk_live_0123456789",
    "STRIPE_WEBHOOK_SECRET": "whsec_0123456789",
}


def test_settings_come_from_the_environment():
    settings = Settings.from_env({**GOOD, "DB_PREPARED_STATEMENTS": "false", "WEB_WORKERS": "3",
                                  "TRUSTED_PROXIES": "10.0.0.1, 10.0.0.2"}, env_file=None)
    assert settings.mode == "production" and settings.web_workers == 3
    assert settings.db_prepared_statements is False
    assert settings.trusted_proxies == ("10.0.0.1", "10.0.0.2")
    assert settings.dev_mailbox is False  # off by default in production
    assert settings.sqlalchemy_url == "postgresql+psycopg://fairshelf@db/fairshelf"
    assert settings.problems() == []


def test_an_env_file_fills_in_what_the_environment_does_not(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("PORT=9000\nSMTP_HOST=from-file\n")
    settings = Settings.from_env({"SMTP_HOST": "from-env"}, env_file=env_file)
    assert settings.port == 9000 and settings.smtp_host == "from-env"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY is missing or weak"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY is missing or weak"),
        ({"SECRET_KEY": "development-only-secret-key-not-for-production"}, "SECRET_KEY is missing or weak"),
        ({"DEBUG": "true"}, "DEBUG is on"),
        ({"DEV_MAILBOX": "true"}, "the development mailbox is enabled"),
        ({"SMTP_HOST": ""}, "the development mailbox is enabled"),
        ({"BASE_URL": "http://fairshelf.example"}, "BASE_URL must be an https:// address"),
        ({"STRIPE_SECRET_KEY": ""}, "the development payment processor cannot run in production"),
        ({"STRIPE_WEBHOOK_SECRET": ""}, "STRIPE_WEBHOOK_SECRET is not set"),
    ],
)
def test_production_refuses_to_start_with_insecure_settings(change, problem):
    settings = Settings.from_env({**GOOD, **change}, env_file=None)
    with pytest.raises(InsecureSettings, match=problem):
        create_app(settings)


def test_unknown_mode_is_refused():
    with pytest.raises(InsecureSettings, match="MODE must be"):
        Settings.from_env({"MODE": "staging"}, env_file=None)


def test_development_settings_start_without_configuration():
    settings = Settings.from_env({}, env_file=None)
    assert settings.mode == "development" and settings.problems() == []
    assert settings.payments == "dev" and not settings.livemode and settings.webhook_secret.startswith("whsec_")


def test_the_payment_mode_follows_the_stripe_key():
    assert Settings(stripe_secret_key="sk_test_abc").livemode is False
    assert Settings(stripe_secret_key="sk_live_abc").livemode is True
    assert Settings(stripe_secret_key="sk_test_abc").payments == "stripe"

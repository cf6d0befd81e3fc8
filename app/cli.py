"""The command line: python -m app serve | worker | migrate | seed | create-admin | dev."""

from __future__ import annotations

import asyncio
import getpass
import os
import signal
import subprocess
import sys
import time

import click

from app.settings import ROOT, Settings


def _settings() -> Settings:
    from app.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings)
    return settings


@click.group()
def cli() -> None:
    """Fairshelf: a creator marketplace."""


def granian_command(settings: Settings) -> list[str]:
    return [
        sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "app.main:app_from_env",
        "--host", settings.host, "--port", str(settings.port), "--workers", str(settings.web_workers),
        "--log-level", "warning", "--no-ws",
    ]


@cli.command()
def serve() -> None:
    """Serve HTTP with Granian (HOST, PORT, WEB_WORKERS)."""
    settings = _settings().check()
    os.execv(sys.executable, granian_command(settings))


@cli.command()
@click.option("--jobs", "extra", multiple=True, help="Import more job modules (module path with a JOBS dict).")
@click.option("--burst", is_flag=True, help="Exit once no job is due and none is running.")
def worker(extra: tuple[str, ...], burst: bool) -> None:
    """Run background jobs until stopped."""
    from app.worker.registry import collect
    from app.worker.runner import run_worker

    settings = _settings().check()
    handlers, periodic = collect(extra)
    run_worker(settings, handlers, periodic, burst=burst)


@cli.command()
@click.argument("revision", default="head")
def migrate(revision: str) -> None:
    """Apply database migrations (an explicit release step; the app never migrates on boot)."""
    from app.db.migrate import upgrade

    upgrade(_settings(), revision)
    click.echo(f"database migrated to {revision}")


@cli.command()
def seed() -> None:
    """Load demo data once (does nothing if it is already there)."""
    from app.seed import seed_demo

    created = asyncio.run(seed_demo(_settings()))
    click.echo("demo data loaded" if created else "demo data already present")


@cli.command("create-admin")
@click.option("--email", prompt=True)
@click.option("--username", prompt=True)
@click.option("--display-name", default="Administrator")
def create_admin(email: str, username: str, display_name: str) -> None:
    """Create an administrator, or make an existing account one (password read from ADMIN_PASSWORD or a prompt)."""
    from app.seed import make_admin

    password = os.environ.get("ADMIN_PASSWORD") or getpass.getpass("Password (10–128 characters): ")
    try:
        message = asyncio.run(make_admin(_settings(), email, username, display_name, password))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(message)


@cli.command()
def dev() -> None:
    """Everything `make run` does: database, migrations, demo data, web server and worker; Ctrl-C stops it all."""
    from app.db import embedded
    from app.db.migrate import upgrade
    from app.seed import seed_demo

    settings = _settings()
    env = dict(os.environ)
    if not settings.database_url:
        click.echo("starting the embedded PostgreSQL in var/pgdata …")
        admin_url = embedded.start(settings.var_dir / "pgdata")
        url = embedded.ensure_database(admin_url, "fairshelf")
        settings = settings.with_(database_url=url)
        env["DATABASE_URL"] = url
    upgrade(settings)
    if asyncio.run(seed_demo(settings)):
        click.echo("demo data loaded (log in as nadia / demo-password-1)")
    children = [
        subprocess.Popen(granian_command(settings), env=env, cwd=ROOT, start_new_session=True),
        subprocess.Popen([sys.executable, "-m", "app", "worker"], env=env, cwd=ROOT, start_new_session=True),
    ]
    click.echo(f"Fairshelf is running at http://{settings.host}:{settings.port}  (Ctrl-C stops it)")

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
        click.echo("stopped")

"""create_app(settings) builds the whole web application; nothing happens at import time."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.logging import LoggingConfig
from litestar.middleware import DefineMiddleware
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from app.accounts import routes as accounts_routes
from app.accounts.auth import session_middleware
from app.accounts.passwords import Passwords
from app.accounts.service import Accounts
from app.catalog import creator_routes, item_routes, public_routes
from app.checkout import admin_routes as checkout_admin_routes
from app.checkout import creator_routes as checkout_creator_routes
from app.checkout import routes as checkout_routes
from app.checkout import webhooks
from app.checkout.dev_routes import DEV_ROUTES as DEV_CHECKOUT_ROUTES
from app.checkout.gateway import make_gateway
from app.db.engine import (
    make_engine,
    make_read_pool,
    make_reader_engine,
    make_reader_sessionmaker,
    make_sessionmaker,
    provide_db,
    provide_reads,
)
from app.discovery import feeds as discovery_feeds
from app.discovery import routes as discovery_routes
from app.mail import routes as mail_routes
from app.mail.service import Mailer
from app.media import routes as media_routes
from app.media.breaker import StorageBreaker
from app.media.storage import LocalStorage, Storage, make_storage
from app.media.storage_routes import MEDIA_ROUTES
from app.payouts import admin_routes as payout_admin_routes
from app.payouts import dev_routes as payout_dev_routes
from app.payouts import routes as payout_routes
from app.payouts.stats import ItemCounter
from app.settings import Settings
from app.web.caching import PageCache, page_cache_middleware
from app.web.errors import EXCEPTION_HANDLERS
from app.web.flash import write_flash_cookie
from app.web.observability import Metrics, count_unrouted, health, metrics_endpoint, metrics_middleware
from app.web.security import add_security_headers, refuse_nul_middleware
from app.web.templating import STATIC, make_environment


def make_storage_from(settings: Settings) -> Storage:
    return make_storage(
        settings.storage, secret_key=settings.secret_key, local_root=settings.var_dir / "media",
        s3_endpoint_url=settings.s3_endpoint_url, s3_region=settings.s3_region, s3_bucket=settings.s3_bucket,
        s3_access_key=settings.s3_access_key, s3_secret_key=settings.s3_secret_key,
        s3_public_endpoint_url=settings.s3_public_endpoint_url, s3_connect_timeout=settings.s3_connect_timeout,
        s3_read_timeout=settings.s3_read_timeout, s3_max_attempts=settings.s3_max_attempts,
    )


def provide_accounts(state: State) -> Accounts:
    return state.accounts


def create_app(settings: Settings) -> Litestar:
    settings.check()
    env = make_environment(settings)
    engine = make_engine(settings)
    reader_engine = make_reader_engine(settings)  # a pool of its own: connections stay in autocommit
    mailer = Mailer(settings, env)
    storage = make_storage_from(settings)
    gateway = make_gateway(settings)
    metrics = Metrics()
    csrf_config = CSRFConfig(
        secret=settings.secret_key,
        cookie_name="fairshelf_csrf",
        header_name="x-csrf-token",
        cookie_secure=settings.secure_cookies,
        cookie_httponly=True,
    )
    state = State(
        {
            "settings": settings,
            "engine": engine,
            "sessionmaker": make_sessionmaker(engine),
            "reader": make_reader_sessionmaker(reader_engine),
            "accounts": Accounts(settings, Passwords(settings), mailer),
            "metrics": metrics,
            "storage": storage,
            "gateway": gateway,
            "storage_breaker": StorageBreaker(storage),
            "page_cache": PageCache(settings.page_cache_seconds, settings.page_cache_stale_seconds,
                                    metrics.page_cache),
        }
    )

    routes: list[Any] = [
        *discovery_routes.ROUTES,
        *discovery_feeds.ROUTES,
        *accounts_routes.ROUTES,
        *creator_routes.ROUTES,
        *item_routes.ROUTES,
        *public_routes.ROUTES,
        *checkout_routes.ROUTES,
        *checkout_creator_routes.ROUTES,
        *checkout_admin_routes.ROUTES,
        *webhooks.ROUTES,
        *payout_routes.ROUTES,
        *payout_admin_routes.ROUTES,
        *media_routes.ROUTES,
        health,
        metrics_endpoint,
        create_static_files_router(path="/static", directories=[STATIC], name="static", include_in_schema=False),
    ]
    if isinstance(storage, LocalStorage):
        routes += MEDIA_ROUTES  # S3 serves its own signed URLs; local files are served here, Range included
    if settings.dev_mailbox and settings.mode != "production":
        routes += mail_routes.DEV_ROUTES
    if settings.payments == "dev":  # the development processor refuses production (Settings.check, DevProcessor)
        routes += DEV_CHECKOUT_ROUTES + payout_dev_routes.ROUTES

    counter = ItemCounter()
    state.item_counter = counter

    async def on_startup() -> None:
        # Plain psycopg connections for the item page; made at each start, as a closed pool cannot reopen.
        state.read_pool = make_read_pool(settings)
        await state.read_pool.open()
        counter.start(state.sessionmaker)

    async def dispose_engine() -> None:
        await counter.stop(state.sessionmaker)
        await engine.dispose()
        await reader_engine.dispose()
        await state.read_pool.close()

    return Litestar(
        route_handlers=routes,
        state=state,
        dependencies={
            "db": Provide(provide_db),
            "reads": Provide(provide_reads),
            "accounts": Provide(provide_accounts, sync_to_thread=False),
        },
        middleware=[
            metrics_middleware,
            refuse_nul_middleware,
            DefineMiddleware(page_cache_middleware, csrf_config=csrf_config),  # before the session is loaded
            DefineMiddleware(session_middleware),
        ],
        request_max_body_size=2 * 1024 * 1024,  # forms; the upload route streams under the tier's own limit
        csrf_config=csrf_config,
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(env)),
        plugins=[HTMXPlugin()],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        before_send=[add_security_headers, write_flash_cookie, count_unrouted],
        on_startup=[on_startup],
        on_shutdown=[dispose_engine],
        logging_config=LoggingConfig(log_exceptions="never", configure_root_logger=False),
        openapi_config=None,
        debug=settings.debug,
    )


def app_from_env() -> Litestar:
    """Entry point for the ASGI server (granian --factory)."""
    from app.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings)
    return create_app(settings)

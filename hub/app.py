"""The one place that wires hub together: settings in, a running hub out.

`open_runtime` builds the parts every hub process needs (store, Redis, bus,
inbox, router, channels, deliverer); `create_app` puts the web server on top
and, when asked, runs the worker in the same process (the embedded default).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from arq.connections import ArqRedis
from redis.exceptions import RedisError

from hub import __version__
from hub.campaigns.imports import ContactImports
from hub.campaigns.replies import CampaignReplies
from hub.campaigns.reports import CampaignReports
from hub.campaigns.runtime import build_campaigns
from hub.campaigns.service import CampaignService
from hub.campaigns.store import CampaignStore
from hub.care import survey
from hub.care.engine import CareEngine
from hub.care.hours import BusinessHours
from hub.care.messages import CareMessages, CarePolicy
from hub.care.rules import parse_rules
from hub.care.templates import TemplateError, Templates
from hub.care.webhooks import WebhookSender, webhook_secret
from hub.channels.base import Channel, ChannelContext
from hub.channels.email.compose import message_id_key
from hub.channels.registry import channel_class
from hub.clock import Clock, SystemClock
from hub.delivery import Deliverer, Sweeper
from hub.errors import ConfigError, StoreUnavailable, UnknownAccount
from hub.events import EventBus
from hub.inbox.attachments import AttachmentStore
from hub.inbox.bounces import record_failure
from hub.inbox.customer_view import CustomerView
from hub.inbox.inbound import DeliveryFailure, InboundMessage, IngestOutcome, ReplyWindow
from hub.inbox.service import InboxPolicy, InboxService
from hub.inbox.store import Store
from hub.jobs import EmbeddedRedis, JobQueue, connect, redis_settings
from hub.keys import hub_secret_key
from hub.locks import RedisLocks
from hub.metrics import Metrics
from hub.outbound_http import Fetcher, FetchPolicy
from hub.reports.service import ReportService
from hub.reports.store import ReportStore
from hub.routing.calls import CallTargets
from hub.routing.presence import PresenceTracker
from hub.routing.router import Router
from hub.routing.sla import SlaTimers
from hub.settings import HubSettings
from hub.web import (
    agents,
    api,
    calls,
    canned,
    contact_imports,
    contacts,
    media,
    openapi,
    sessions,
    workspace,
)
from hub.web import campaigns as web_campaigns
from hub.web import reports as web_reports
from hub.web.audit import AUDIT_CLOCK, TRUSTED_PROXIES
from hub.web.auth import LoginGuard, Sessions, auth_middleware
from hub.web.errors import error_middleware
from hub.web.realtime import AgentStream

if TYPE_CHECKING:  # imported only where the listener runs: aiosmtpd is not needed otherwise
    from hub.channels.email.smtp_in import SmtpListener

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: HubSettings
    clock: Clock
    metrics: Metrics
    store: Store
    redis: ArqRedis
    bus: EventBus
    jobs: JobQueue
    inbox: InboxService
    router: Router
    http: aiohttp.ClientSession
    channels: dict[str, Channel]
    deliverer: Deliverer
    sweeper: Sweeper
    attachments: AttachmentStore
    care: CareEngine
    care_messages: CareMessages
    care_webhooks: WebhookSender
    smtp_listener: SmtpListener | None = None  # the inbound SMTP server, when enabled
    presence: PresenceTracker | None = None  # agents' presence from their sockets
    sla: SlaTimers | None = None  # first-response deadlines and their escalation
    campaigns: CampaignService | None = None  # bulk campaigns (SQLite store for now)
    campaign_replies: CampaignReplies | None = None  # replies and bounces linked back
    reports: ReportService | None = None  # figures over the store (both backends)

    async def ingest(self, inbound: InboundMessage) -> IngestOutcome:
        outcome = await self.inbox.ingest(inbound)
        self.metrics.count_inbound(inbound.channel, duplicate=outcome.duplicate)
        return outcome

    async def report_failure(self, failure: DeliveryFailure) -> bool:
        if await record_failure(self.inbox, failure) is not None:
            return True
        replies = self.campaign_replies
        return replies is not None and await replies.on_bounce(failure)


@dataclass
class ChannelReplyWindows:
    """The inbox's view of each account's reply window, read from its channel."""

    channels: dict[str, Channel]

    def reply_window(self, account_id: str) -> ReplyWindow | None:
        channel = self.channels.get(account_id)
        return channel.reply_window if channel is not None else None


def build_store(settings: HubSettings) -> Store:
    if settings.mongodb_url:
        from hub.inbox.mongo import MongoStore

        return MongoStore.from_url(settings.mongodb_url, settings.store.mongodb_database)
    from hub.inbox.sqlite import SqliteStore

    return SqliteStore(
        settings.data_dir / "hub.db", busy_timeout_ms=settings.store.sqlite_busy_timeout_ms
    )


def queue_name(settings: HubSettings) -> str:
    return f"{settings.redis.prefix}:queue"


@asynccontextmanager
async def open_runtime(
    settings: HubSettings, *, clock: Clock | None = None, listen: bool = True
) -> AsyncIterator[Runtime]:
    """Everything a hub process needs, opened in order and closed in reverse.

    `listen`: receive the events of other hub processes (for the browsers'
    sockets this one serves). A process that serves none (`hub worker`) does
    not: listening, it would make every web process publish each webhook's
    events to Redis for it (see `hub.events`)."""
    clock = clock or SystemClock()
    async with AsyncExitStack() as stack:
        embedded = None
        if settings.embedded_redis:
            embedded = await asyncio.to_thread(EmbeddedRedis.start, settings.data_dir)
            stack.callback(embedded.stop)
        redis = await connect(redis_settings(settings.redis_url, embedded), queue_name(settings))
        stack.push_async_callback(redis.aclose)
        store = build_store(settings)
        await store.open()
        stack.push_async_callback(store.close)
        bus = EventBus(redis, channel=f"{settings.redis.prefix}:events")
        if listen:
            await bus.start()
        stack.push_async_callback(bus.stop)
        jobs = JobQueue(redis, queue_name(settings))
        channels: dict[str, Channel] = {}  # filled below, once `runtime.ingest` exists
        routed_through: dict[str, list[str]] = {}  # filled below from the channels
        inbox = InboxService(
            store,
            bus,
            clock,
            jobs,
            InboxPolicy(
                reopen_window=timedelta(hours=settings.inbox.reopen_window_hours),
                subject_window=timedelta(hours=settings.inbox.subject_window_hours),
                account_teams=settings.account_teams(),
                routed_through=routed_through,
            ),
            reply_windows=ChannelReplyWindows(channels),
        )
        router = Router(store, inbox, clock, settings.routing)
        router.attach(bus)
        presence = PresenceTracker(
            redis,
            settings.redis.prefix,
            queue_name(settings),
            store,
            bus,
            timedelta(seconds=settings.routing.away_grace_seconds),
        )
        stack.push_async_callback(presence.close)
        sla = SlaTimers(store, router, bus, clock, settings.routing, redis, queue_name(settings))
        sla.attach(bus)
        http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=settings.delivery.timeout_seconds),
            headers={"User-Agent": f"hub/{__version__}"},
        )
        stack.push_async_callback(http.close)
        files = Fetcher(
            FetchPolicy(
                allowed_networks=tuple(settings.delivery.fetch_allowed_networks),
                timeout_seconds=settings.delivery.timeout_seconds,
            ),
            user_agent=f"hub/{__version__}",
        )
        stack.push_async_callback(files.close)
        metrics = Metrics()
        public_url = (
            settings.server.public_url or f"http://{settings.server.host}:{settings.server.port}"
        )
        secret_key = hub_secret_key(settings)
        care, care_messages = build_care(
            settings, store, inbox, clock, channels, jobs, public_url, secret_key, router
        )
        care.attach(bus)
        stack.push_async_callback(care.settled)  # before the store closes
        runtime = Runtime(
            settings=settings,
            clock=clock,
            metrics=metrics,
            store=store,
            redis=redis,
            bus=bus,
            jobs=jobs,
            inbox=inbox,
            router=router,
            presence=presence,
            sla=sla,
            http=http,
            channels=channels,
            deliverer=Deliverer(store, inbox, channels, clock, settings.delivery, metrics),
            sweeper=Sweeper(store, jobs, clock, settings.delivery),
            attachments=AttachmentStore(
                settings.data_dir / "attachments", max_bytes=settings.attachments.max_bytes
            ),
            care=care,
            care_messages=care_messages,
            care_webhooks=WebhookSender(
                http,
                timeout_seconds=settings.care.webhook_timeout_seconds,
                max_attempts=settings.care.webhook_max_attempts,
                backoff_seconds=settings.care.webhook_backoff_seconds,
            ),
        )
        campaign_store = await build_campaign_store(store)
        context = ChannelContext(
            ingest=runtime.ingest,
            http=http,
            clock=clock,
            default_region=settings.inbox.default_region,
            public_url=public_url,
            receipts=inbox,
            state=store,
            locks=RedisLocks(redis, settings.redis.prefix),
            reports=CampaignReports(inbox, campaign_store),
            agents=CallTargets(store),
            bus=bus,
            redis=redis,
            key_prefix=settings.redis.prefix,
            secret_key=secret_key,
            customers=CustomerView(store, inbox),
            attachments=runtime.attachments,
            report_failure=runtime.report_failure,
            files=files,
        )
        for account in settings.accounts:
            channel = channel_class(account.channel)(account, context)
            channels[account.id] = channel
            stack.push_async_callback(channel.close)
        if campaign_store is not None:
            runtime.campaigns = build_campaigns(runtime, campaign_store)
            runtime.campaign_replies = CampaignReplies(
                campaign_store,
                inbox,
                timedelta(hours=settings.campaigns.reply_window_hours),
                message_id_key(secret_key),
            )
            runtime.campaign_replies.attach(bus)
        report_store = await build_report_store(store)
        if report_store is not None:
            runtime.reports = ReportService(
                report_store,
                store,
                campaign_store,
                clock,
                schedule_for=lambda account, team: router.policy.rule(account, team).hours,
                timezone=settings.reports.timezone,
            )
        for channel in channels.values():
            for other in channel.references():
                if other not in channels:
                    raise ConfigError(
                        f"account {channel.account.id!r} refers to account {other!r},"
                        " which is not configured"
                    )
            for other in channel.routes_through():
                routed_through.setdefault(other, []).append(channel.account.id)
        yield runtime


def build_care(
    settings: HubSettings,
    store: Store,
    inbox: InboxService,
    clock: Clock,
    channels: dict[str, Channel],
    jobs: JobQueue,
    public_url: str,
    secret_key: bytes,
    router: Router,
) -> tuple[CareEngine, CareMessages]:
    """Automation rules and care messages, checked now: a rule or template that
    cannot work stops the start-up with an error naming it."""
    care = settings.care
    try:
        templates = Templates.load(
            settings.templates.folder, default_language=settings.templates.default_language
        )
    except TemplateError as exc:
        raise ConfigError(str(exc)) from exc
    rules = parse_rules(
        care.rules,
        templates=templates,
        teams={team.id for team in settings.teams},
        accounts={account.id for account in settings.accounts},
    )
    for rule in rules:
        for action in rule.actions:
            if action.type == "webhook":
                webhook_secret(action.secret_env)
    for account_id in care.account_hours:
        if settings.account(account_id) is None:
            raise ConfigError(
                f"care.account_hours names account {account_id!r}, which is not defined"
            )

    def consent_key(account_id: str) -> str | None:
        channel = channels.get(account_id)
        return channel.consent_key if channel is not None else None

    messages = CareMessages(
        store,
        inbox,
        clock,
        templates,
        CarePolicy(
            default_language=settings.templates.default_language,
            default_timezone=care.default_timezone,
            daytime=care.daytime,
            company_name=care.company_name,
        ),
        consent_key,
    )
    lifetime = timedelta(days=care.survey_link_days)
    engine = CareEngine(
        rules,
        store=store,
        inbox=inbox,
        clock=clock,
        messages=messages,
        hours=BusinessHours(care.hours, care.account_hours),
        survey=survey.SurveyLinks(secret_key, clock, lifetime),
        public_url=public_url,
        webhooks=jobs,
        default_language=settings.templates.default_language,
        birthday_hour=care.birthday_hour,
        survey_lifetime=lifetime,
        router=router,
    )
    return engine, messages


async def build_report_store(store: Store) -> ReportStore | None:
    """Report queries over the inbox store's database, with the indexes they use."""
    from hub.inbox.sqlite import SqliteStore

    reports: ReportStore
    if isinstance(store, SqliteStore):
        from hub.reports.sqlite import SqliteReportStore

        reports = SqliteReportStore(store)
    else:
        from hub.inbox.mongo import MongoStore
        from hub.reports.mongo import MongoReportStore

        if not isinstance(store, MongoStore):
            return None
        reports = MongoReportStore(store)
    await reports.open()
    return reports


async def build_campaign_store(store: Store) -> CampaignStore | None:
    """Campaign storage beside the inbox store, on the same database."""
    from hub.inbox.sqlite import SqliteStore

    campaigns: CampaignStore
    if isinstance(store, SqliteStore):
        from hub.campaigns.sqlite import SqliteCampaignStore

        campaigns = SqliteCampaignStore(store)
    else:
        from hub.campaigns.mongo import MongoCampaignStore
        from hub.inbox.mongo import MongoStore

        if not isinstance(store, MongoStore):
            return None
        campaigns = MongoCampaignStore(store)
    await campaigns.open()
    return campaigns


RUNTIME = web.AppKey("runtime", Runtime)
STREAM = web.AppKey("agent_stream", AgentStream)


async def healthz(request: web.Request) -> web.Response:
    """200 when the store and Redis both answer; 503 naming what does not."""
    runtime = request.app[RUNTIME]
    checks = {"store": "ok", "redis": "ok"}
    try:
        await runtime.store.ping()
    except StoreUnavailable as exc:
        checks["store"] = exc.message
    try:
        await runtime.redis.ping()
    except (RedisError, OSError) as exc:
        checks["redis"] = f"unreachable: {exc}"
    healthy = all(v == "ok" for v in checks.values())
    return web.json_response(
        {"status": "ok" if healthy else "unavailable", **checks}, status=200 if healthy else 503
    )


async def metrics(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    try:
        runtime.metrics.queue_depth.set(await runtime.jobs.depth())
    except (RedisError, OSError):
        pass
    try:
        counts = await runtime.store.counts()
        for status, count in counts.messages_by_status.items():
            runtime.metrics.messages_by_status.labels(status=status).set(count)
    except StoreUnavailable:
        pass
    return web.Response(
        body=runtime.metrics.render(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


async def unknown_webhook(request: web.Request) -> web.Response:
    account = request.match_info["account"]
    raise UnknownAccount(
        f"no {request.match_info['channel']} account {account!r} is configured on this hub"
    )


async def landing(request: web.Request) -> web.Response:
    runtime = request.app[RUNTIME]
    accounts = (
        "".join(f"<li><code>{a.id}</code> ({a.channel})</li>" for a in runtime.settings.accounts)
        or "<li>none yet: see <code>config/hub.example.toml</code></li>"
    )
    return web.Response(
        content_type="text/html",
        text=f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>hub</title><meta name="viewport" content="width=device-width,initial-scale=1">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem}}
code{{background:#f3f3f3;padding:0 .25rem}}</style></head><body>
<h1>hub {__version__} is running</h1>
<p>Channel accounts:</p><ul>{accounts}</ul>
<p><a href="/healthz">/healthz</a> · <a href="/metrics">/metrics</a> ·
<a href="/app">the workspace</a> ·
REST API under <code>/api/v1</code> (<a href="/api/docs">documented</a>; create a token
with <code>hub token create</code>).</p>
</body></html>""",
    )


async def _run_channel(channel: Channel) -> None:
    """A channel's pollers; a crash is logged and the channel restarted, never fatal."""
    while True:
        try:
            await channel.run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "channel input crashed; restarting in 5 s",
                extra={"event": "channel.crashed", "account_id": channel.account.id},
            )
            await asyncio.sleep(5)


async def _start_smtp_listener(runtime: Runtime, stack: AsyncExitStack) -> None:
    """The inbound SMTP server, for the e-mail accounts of this hub."""
    from hub.channels.email.channel import EmailChannel
    from hub.channels.email.smtp_in import SmtpListener

    accounts = [c for c in runtime.channels.values() if isinstance(c, EmailChannel)]
    if not accounts:
        raise ConfigError('smtp_listener is enabled but no account has channel = "email"')
    listener = SmtpListener(runtime.settings.smtp_listener, accounts)
    await listener.start()
    stack.push_async_callback(listener.stop)
    runtime.smtp_listener = listener


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


async def create_app(
    settings: HubSettings, *, clock: Clock | None = None, with_worker: bool = False
) -> web.Application:
    """The hub's web application. The runtime opens here and closes on cleanup."""
    stack = AsyncExitStack()
    try:
        runtime = await stack.enter_async_context(open_runtime(settings, clock=clock))
        if with_worker:
            from hub.worker import WorkerService

            worker = WorkerService(runtime)
            await worker.start()
            stack.push_async_callback(worker.stop)
        for channel in runtime.channels.values():
            stack.push_async_callback(_cancel, asyncio.create_task(_run_channel(channel)))
        if settings.smtp_listener.enabled:
            await _start_smtp_listener(runtime, stack)
    except BaseException:
        await stack.aclose()
        raise
    session_store = Sessions(
        runtime.redis,
        settings.redis.prefix,
        timedelta(hours=settings.workspace.session_hours),
    )
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        middlewares=[error_middleware, auth_middleware(runtime.store, session_store)],
    )
    app[RUNTIME] = runtime
    app[api.INBOX] = runtime.inbox
    app[api.STORE] = runtime.store
    app[api.BUS] = runtime.bus
    app[api.TEAMS] = list(settings.teams)
    app[api.JOBS] = runtime.jobs
    app[AUDIT_CLOCK] = runtime.clock
    app[TRUSTED_PROXIES] = tuple(settings.server.trusted_proxies)
    app[sessions.SESSIONS] = session_store
    app[media.UPLOADS] = media.Uploads(
        runtime.redis, settings.redis.prefix, timedelta(days=settings.attachments.upload_days)
    )
    app[sessions.LOGIN_GUARD] = LoginGuard(
        runtime.redis,
        settings.redis.prefix,
        settings.workspace.login_attempts,
        timedelta(seconds=settings.workspace.login_window_seconds),
    )
    app[sessions.WORKSPACE] = settings.workspace
    app[sessions.PUBLIC_URL] = settings.server.public_url or ""
    stream = AgentStream(runtime.bus, runtime.inbox, runtime.presence)
    app[STREAM] = stream
    dialers: dict[str, calls.Dialer] = {
        account_id: channel
        for account_id, channel in runtime.channels.items()
        if isinstance(channel, calls.Dialer)
    }
    app[calls.DIALERS] = dialers
    app.router.add_get("/", landing)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    added: set[tuple[str, str]] = set()
    for channel in runtime.channels.values():
        for route in channel.routes():
            # Accounts of one family may share a route (every web-chat account
            # serves the same /widget.js): the first account's handler serves it.
            if isinstance(route, web.RouteDef):
                if (route.method, route.path) in added:
                    continue
                added.add((route.method, route.path))
            app.router.add_routes([route])
    app.router.add_post("/webhooks/{channel}/{account}", unknown_webhook)
    app.router.add_post("/webhooks/{channel}/{account}/{rest:.*}", unknown_webhook)
    app.router.add_routes(stream.routes())
    app.router.add_routes(api.routes)
    for module in (sessions, agents, contacts, canned, workspace, openapi):
        app.router.add_routes(module.routes)
    sources: dict[str, media.MediaSource] = {
        account_id: channel
        for account_id, channel in runtime.channels.items()
        if isinstance(channel, media.MediaSource)
    }
    app[media.MEDIA] = sources
    app[media.MEDIA_STORE] = runtime.store
    app[media.ATTACHMENT_STORE] = runtime.attachments
    app.router.add_routes(media.routes)
    app[survey.SURVEY] = runtime.care.survey
    app[survey.SURVEY_INBOX] = runtime.inbox
    app.router.add_routes(survey.routes)
    app.router.add_routes(calls.routes)
    app[contact_imports.IMPORT_MAX_BYTES] = settings.campaigns.import_max_bytes
    if runtime.campaigns is not None:
        app[web_campaigns.CAMPAIGNS] = runtime.campaigns
        imports = ContactImports(
            runtime.redis,
            settings.redis.prefix,
            runtime.store,
            runtime.clock,
            default_region=settings.inbox.default_region,
        )
        app[contact_imports.IMPORTS] = imports
        app.on_cleanup.append(lambda _: imports.close())
    app.router.add_routes(contact_imports.routes)
    app.router.add_routes(web_campaigns.routes)
    if runtime.reports is not None:
        app[web_reports.REPORTS] = runtime.reports
    app.router.add_routes(web_reports.routes)

    async def close_sockets(_: web.Application) -> None:
        # Long-lived sockets would hold the shutdown for its whole grace period.
        await stream.shutdown()
        for channel in runtime.channels.values():
            await channel.shutdown()

    app.on_shutdown.append(close_sockets)

    async def close(_: web.Application) -> None:
        await stack.aclose()

    app.on_cleanup.append(close)
    return app

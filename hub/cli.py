"""The `hub` command: run the hub and administer it."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from aiohttp import web

from hub import __version__
from hub.errors import HubError
from hub.logs import configure_logging
from hub.process import EventLoopChoice, new_event_loop
from hub.settings import HubSettings, load_settings

T = TypeVar("T")
log = logging.getLogger("hub")

config_option = click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML config file (default: $HUB_CONFIG, else ./config/hub.toml if present).",
)
data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the embedded store and Redis (default: ./hub-data).",
)


def settings_from(config: Path | None, **overrides: Any) -> HubSettings:
    try:
        settings = load_settings(config, **overrides)
    except HubError as exc:
        raise click.ClickException(exc.message) from exc
    configure_logging(settings.log_level, settings.log_format)
    return settings


def run(coroutine: Callable[[], Awaitable[T]], loop: EventLoopChoice = "asyncio") -> T:
    try:
        with asyncio.Runner(loop_factory=lambda: new_event_loop(loop)) as runner:
            return runner.run(coroutine())  # type: ignore[arg-type]
    except HubError as exc:
        raise click.ClickException(exc.message) from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hub")
def main() -> None:
    """hub: every customer channel in one shared inbox.

    Start with `hub serve`; add people with `hub agent add` and give
    integrations a key with `hub token create`.
    """


@main.command()
@config_option
@data_dir_option
@click.option("--host", help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, help="Port to listen on (default 8080).")
@click.option(
    "--with-worker/--no-worker",
    default=None,
    help="Run the delivery worker in this process. Default: yes with the embedded"
    " Redis, no when REDIS_URL points at a shared one (run `hub worker` there).",
)
def serve(
    config: Path | None,
    data_dir: Path | None,
    host: str | None,
    port: int | None,
    with_worker: bool | None,
) -> None:
    """Run the hub's web server (webhooks, REST API, workspace)."""
    from hub.app import create_app
    from hub.process import tune_for_server

    settings = settings_from(
        config, data_dir=data_dir, **{"server.host": host, "server.port": port}
    )
    if with_worker is None:
        with_worker = settings.embedded_redis
    log.info(
        "hub starting",
        extra={
            "event": "hub.start",
            "url": f"http://{settings.server.host}:{settings.server.port}",
            "store": "sqlite" if settings.embedded_store else "mongodb",
            "redis": "embedded" if settings.embedded_redis else "external",
            "worker": with_worker,
            "accounts": [a.id for a in settings.accounts],
        },
    )
    tune_for_server()
    loop = new_event_loop(settings.server.event_loop)
    log.info("event loop", extra={"event": "hub.loop", "loop": type(loop).__module__})
    try:
        web.run_app(
            create_app(settings, with_worker=with_worker),
            host=settings.server.host,
            port=settings.server.port,
            print=None,
            access_log=None,
            shutdown_timeout=settings.server.shutdown_grace_seconds,
            loop=loop,
        )
    except HubError as exc:
        raise click.ClickException(exc.message) from exc
    log.info("hub stopped", extra={"event": "hub.stop"})


@main.command(short_help="Run the background worker alone.")
@config_option
@data_dir_option
def worker(config: Path | None, data_dir: Path | None) -> None:
    """Run the background worker alone (deliveries, care messages, campaigns, SLA
    checks, report rollups), for deployments that scale workers apart from web
    processes."""
    from hub.app import open_runtime
    from hub.process import tune_for_server
    from hub.worker import WorkerService

    settings = settings_from(config, data_dir=data_dir)
    tune_for_server()

    async def work() -> None:
        async with open_runtime(settings, listen=False) as runtime:
            log.info("worker started", extra={"event": "worker.start"})
            await WorkerService(runtime).run_until_cancelled()

    try:
        run(work, settings.server.event_loop)
    except KeyboardInterrupt:
        pass
    log.info("worker stopped", extra={"event": "worker.stop"})


async def with_store(settings: HubSettings, action: Callable[[Any], Awaitable[T]]) -> T:
    from hub.app import build_store

    store = build_store(settings)
    await store.open()
    try:
        return await action(store)
    finally:
        await store.close()


@main.group()
def agent() -> None:
    """Add, list, change and deactivate the people who work the inbox."""


@agent.command("add")
@config_option
@data_dir_option
@click.option("--email", required=True, help="Sign-in e-mail address.")
@click.option("--name", required=True, help="Name shown to colleagues and customers.")
@click.option(
    "--role",
    type=click.Choice(["admin", "agent", "marketer"]),
    default="agent",
    show_default=True,
    help="admin: everything; agent: the inbox; marketer: campaigns and contacts.",
)
@click.option(
    "--password",
    help="Password for the web workspace, at least 10 characters (or --prompt-password;"
    " without either, set one later with `hub agent set-password`).",
)
@click.option("--prompt-password", is_flag=True, help="Ask for the password without echo.")
@click.option(
    "--online", is_flag=True, help="Mark the agent online now, so conversations route to them."
)
@click.option("--capacity", type=int, default=10, show_default=True, help="Max open conversations.")
@click.option("--phone", help="Phone the hub rings for calls (Twilio voice); any format.")
@click.option("--extension", help="PBX extension (Asterisk, CTI): calls taken there are theirs.")
def agent_add(
    config: Path | None,
    data_dir: Path | None,
    email: str,
    name: str,
    role: str,
    password: str | None,
    prompt_password: bool,
    online: bool,
    capacity: int,
    phone: str | None,
    extension: str | None,
) -> None:
    """Add an agent."""
    from hub.clock import SystemClock
    from hub.inbox.addresses import normalise_email
    from hub.inbox.model import Agent
    from hub.web.auth import hash_password

    if prompt_password:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if password is not None:
        check_password(password, "--password")
    settings = settings_from(config, data_dir=data_dir)
    try:
        address = normalise_email(email)
    except HubError as exc:
        raise click.BadParameter(exc.message, param_hint="--email") from exc
    phone = agent_phone(phone, settings.inbox.default_region)
    new = Agent(
        name=name,
        email=address,
        role=role,
        capacity=capacity,
        presence="online" if online else "offline",
        password_hash=hash_password(password) if password else None,
        phone=phone,
        extension=extension.strip() if extension else None,
        created_at=SystemClock().now(),
    )

    async def add(store: Any) -> None:
        await store.add_agent(new)

    run(lambda: with_store(settings, add))
    click.echo(f"added {role} {name} <{address}> id={new.id}")


def check_password(password: str, hint: str) -> None:
    """A usage error unless the password is long enough (the API's rule)."""
    from hub.web.auth import PASSWORD_MIN_LENGTH

    if len(password) < PASSWORD_MIN_LENGTH:
        raise click.BadParameter(
            f"a password needs at least {PASSWORD_MIN_LENGTH} characters", param_hint=hint
        )


@agent.command("set-password")
@config_option
@data_dir_option
@click.option("--email", required=True, help="The agent's sign-in e-mail.")
@click.option(
    "--password",
    help="The new password, at least 10 characters (asked for without echo when left out).",
)
def agent_set_password(
    config: Path | None, data_dir: Path | None, email: str, password: str | None
) -> None:
    """Set an agent's password for the web workspace (for an agent added without
    one, or one who forgot theirs)."""
    from datetime import timedelta

    from hub.app import open_runtime
    from hub.clock import SystemClock
    from hub.inbox.model import AuditEntry
    from hub.web.auth import Sessions, hash_password

    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    check_password(password, "--password")
    settings = settings_from(config, data_dir=data_dir)
    password_hash = hash_password(password)

    async def update() -> None:
        # As the API's password change: the agent's sessions end (a password
        # reset after a leak must lock the old sessions out), and the audit log
        # records it.
        async with open_runtime(settings) as runtime:
            found = await runtime.store.agent_by_email(email.strip().lower())
            if found is None:
                raise click.ClickException(f"no agent with e-mail {email}")
            await runtime.store.update_agent(found.id, password_hash=password_hash)
            ttl = timedelta(hours=settings.workspace.session_hours)
            await Sessions(runtime.redis, settings.redis.prefix, ttl).end_all(found.id)
            entry = AuditEntry(
                at=SystemClock().now(),
                actor_id=None,
                action="agent.password_set",
                target=found.id,
                detail={"via": "cli"},
            )
            await runtime.store.add_audit(entry)

    run(update)
    click.echo(f"password set for {email}; their signed-in sessions ended")


def agent_phone(raw: str | None, region: str) -> str | None:
    """The agent's phone in E.164, or a usage error naming --phone."""
    from hub.inbox.addresses import normalise_phone

    if not raw:
        return None
    try:
        return normalise_phone(raw, region)
    except HubError as exc:
        raise click.BadParameter(exc.message, param_hint="--phone") from exc


@agent.command("set-phone")
@config_option
@data_dir_option
@click.option("--email", required=True, help="The agent's sign-in e-mail.")
@click.option("--phone", help="Phone the hub rings for calls; '' removes it.")
@click.option("--extension", help="PBX extension; '' removes it.")
def agent_set_phone(
    config: Path | None,
    data_dir: Path | None,
    email: str,
    phone: str | None,
    extension: str | None,
) -> None:
    """Set (or clear) an agent's phone number and PBX extension."""
    settings = settings_from(config, data_dir=data_dir)
    changes: dict[str, Any] = {}
    if phone is not None:
        changes["phone"] = agent_phone(phone, settings.inbox.default_region)
    if extension is not None:
        changes["extension"] = extension.strip() or None
    if not changes:
        raise click.UsageError("give --phone, --extension or both")

    async def update(store: Any) -> bool:
        found = await store.agent_by_email(email.strip().lower())
        return found is not None and bool(await store.update_agent(found.id, **changes))

    if not run(lambda: with_store(settings, update)):
        raise click.ClickException(f"no agent with e-mail {email}")
    click.echo(f"updated {email}: " + ", ".join(f"{k}={v or '-'}" for k, v in changes.items()))


@agent.command("deactivate")
@config_option
@data_dir_option
@click.option("--email", required=True, help="The agent's sign-in e-mail.")
def agent_deactivate(config: Path | None, data_dir: Path | None, email: str) -> None:
    """Deactivate an agent: they can no longer sign in or be assigned, and their
    open conversations go back to the queue, routed at once to whoever can take
    them. Conversations, history and contacts stay with the company."""
    from hub.app import open_runtime

    settings = settings_from(config, data_dir=data_dir)

    async def deactivate() -> tuple[int, int]:
        async with open_runtime(settings) as runtime:
            found = await runtime.store.agent_by_email(email.strip().lower())
            if found is None:
                raise click.ClickException(f"no agent with e-mail {email}")
            handed_back = await runtime.router.deactivate_agent(found.id)
            reassigned = 0
            for conversation_id in handed_back:
                conversation = await runtime.store.get_conversation(conversation_id)
                if conversation is not None and conversation.assignee_id is not None:
                    reassigned += 1
            return len(handed_back), reassigned

    handed_back, reassigned = run(deactivate)
    click.echo(
        f"deactivated {email}: {handed_back} open conversations handed back,"
        f" {reassigned} reassigned, {handed_back - reassigned} waiting in the queue"
    )


@agent.command("list")
@config_option
@data_dir_option
def agent_list(config: Path | None, data_dir: Path | None) -> None:
    """List active agents."""
    settings = settings_from(config, data_dir=data_dir)

    async def agents(store: Any) -> list[Any]:
        return list(await store.list_agents())

    for a in run(lambda: with_store(settings, agents)):
        reach = " ".join(
            part for part in (a.phone or "", f"ext {a.extension}" if a.extension else "") if part
        )
        click.echo(f"{a.id}  {a.role:<8} {a.presence:<7} {a.name} <{a.email}>  {reach}".rstrip())


@main.group()
def token() -> None:
    """API tokens for integrations and scripts."""


@token.command("create")
@config_option
@data_dir_option
@click.option("--agent", "agent_email", required=True, help="E-mail of the agent it acts as.")
@click.option("--name", default="", help="What the token is for (shown in lists).")
def token_create(config: Path | None, data_dir: Path | None, agent_email: str, name: str) -> None:
    """Create an API token. It is printed once and stored only as a hash."""
    from hub.clock import SystemClock
    from hub.inbox.model import ApiToken
    from hub.web.auth import hash_token, new_token

    settings = settings_from(config, data_dir=data_dir)
    secret = new_token()

    async def create(store: Any) -> bool:
        owner = await store.agent_by_email(agent_email.strip().lower())
        if owner is None:
            return False
        await store.add_token(
            ApiToken(
                agent_id=owner.id,
                name=name,
                token_hash=hash_token(secret),
                created_at=SystemClock().now(),
            )
        )
        return True

    if not run(lambda: with_store(settings, create)):
        raise click.ClickException(
            f"no agent with e-mail {agent_email}; add one with `hub agent add`"
        )
    click.echo(secret)
    click.echo("store it now: hub keeps only its hash and cannot show it again", err=True)


@main.group()
def api() -> None:
    """The API channel, seen from the system behind an account."""


@api.command("listen", short_help="Receive an API account's replies and print them.")
@config_option
@click.option("--account", "account_id", help="API-channel account (default: the only one).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8090, show_default=True, help="Port to listen on.")
def api_listen(config: Path | None, account_id: str | None, host: str, port: int) -> None:
    """Stand in for the system behind an API-channel account: receive the replies
    hub POSTs to its callback_url, check their signature with the account's
    secret, print each one and answer 200 (401 to a bad signature).

    Point the account's callback_url at it (any path), e.g.

    \b
        callback_url = "http://127.0.0.1:8090/replies"
    """
    from hub.channels.api import ApiChannel, ApiOptions
    from hub.channels.api_listener import listener_app

    settings = settings_from(config)
    accounts = [a for a in settings.accounts if a.channel == "api"]
    if account_id is not None:
        accounts = [a for a in accounts if a.id == account_id]
    if len(accounts) != 1:
        known = ", ".join(a.id for a in settings.accounts if a.channel == "api") or "none"
        which = f"no API-channel account {account_id!r}" if account_id else "choose with --account"
        raise click.ClickException(f"{which} (API-channel accounts in the config: {known})")
    [account] = accounts
    try:
        options: ApiOptions = ApiChannel.read_options(account)
    except HubError as exc:
        raise click.ClickException(exc.message) from exc
    started = (
        f"listening on http://{host}:{port}/ for the replies of account {account.id!r}"
        f" (signatures checked); its callback_url is {options.callback_url or 'not set'}"
    )
    web.run_app(
        listener_app(account.id, options.secret, lambda line: click.echo(line)),
        host=host,
        port=port,
        print=lambda _: click.echo(started, err=True),  # once the port is open
        access_log=None,
    )


@main.command("import")
@config_option
@data_dir_option
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--map",
    "mappings",
    multiple=True,
    metavar="COLUMN=FIELD",
    help="Map a column to a field (name, phone, email, language, timezone, birthday (day"
    " first: 03/04/1990 is 3 April), tags, consent.sms, consent.email (yes/no),"
    " attributes.<key>; empty to ignore it). Columns named like a field, or as people"
    " usually name them (Họ và tên, SĐT, Điện thoại, E-mail, Ngày sinh...), map by themselves.",
)
@click.option("--tag", "tags", multiple=True, help="Add this tag to every imported contact.")
@click.option("--region", help="Country of phone numbers without +code (default: inbox's).")
@click.option(
    "--delimiter", help="Cell separator (default: , ; tab or |, whichever the header line uses)."
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the rejected rows, with line and reason, to this CSV file.",
)
def import_contacts(
    config: Path | None,
    data_dir: Path | None,
    file: Path,
    mappings: tuple[str, ...],
    tags: tuple[str, ...],
    region: str | None,
    delimiter: str | None,
    rejects: Path | None,
) -> None:
    """Import contacts from a CSV file (header row first).

    The file may be UTF-8 (Excel's "CSV UTF-8", Google Sheets), UTF-16
    (Excel's "Unicode Text") or Windows-1258 (Excel's "CSV" on a Vietnamese
    Windows); the command says which it read. Phones become E.164; a row whose
    phone or e-mail is already a contact's is merged into that contact.
    Birthdays are day first (03/04/1990 is 3 April) or YYYY-MM-DD. Every
    rejected row is listed with its line and why; the command exits 1 if any
    was rejected.
    """
    import csv
    import io

    from hub.campaigns.csv_text import decode, delimiter_of
    from hub.campaigns.importer import ContactImporter, rejects_csv
    from hub.clock import SystemClock

    mapping: dict[str, str] = {}
    for item in mappings:
        column, sep, target = item.partition("=")
        if not sep or not column:
            raise click.BadParameter(f"{item!r}: use COLUMN=FIELD", param_hint="--map")
        mapping[column] = target.strip()
    if delimiter is not None and len(delimiter) != 1:
        raise click.BadParameter("one character", param_hint="--delimiter")
    settings = settings_from(config, data_dir=data_dir)
    try:
        decoded = decode(file.read_bytes())
    except OSError as exc:
        raise click.ClickException(f"cannot read {file}: {exc}") from exc
    except HubError as exc:
        raise click.ClickException(f"cannot read {file}: {exc.message}") from exc
    delimiter = delimiter or delimiter_of(decoded.text)
    shown = {"\t": "tab"}.get(delimiter, repr(delimiter))
    click.echo(f"{file.name}: read as {decoded.encoding}, cells separated by {shown}", err=True)
    try:
        rows = csv.reader(io.StringIO(decoded.text, newline=""), delimiter=delimiter)
        total = max(sum(1 for _ in rows) - 1, 0)
    except csv.Error as exc:
        raise click.ClickException(f"cannot read {file}: {exc}") from exc

    async def work(store: Any) -> Any:
        importer = ContactImporter(
            store, SystemClock().now, default_region=region or settings.inbox.default_region
        )
        with click.progressbar(
            length=total, label=f"importing {file.name}", file=sys.stderr
        ) as bar:
            return await importer.import_csv(
                io.StringIO(decoded.text, newline=""),
                mapping=mapping,
                extra_tags=tags,
                delimiter=delimiter,
                progress=bar.update,
            )

    report = run(lambda: with_store(settings, work))
    click.echo(
        f"{report.rows} rows: {report.created} created, {report.merged} merged,"
        f" {len(report.rejected)} rejected"
        + (f" ({report.blank} blank rows skipped)" if report.blank else "")
    )
    for rejected in report.rejected[:20]:
        click.echo(f"  line {rejected.line}: {rejected.reason}", err=True)
    if len(report.rejected) > 20:
        click.echo(f"  ... and {len(report.rejected) - 20} more", err=True)
    if rejects is not None and report.rejected:
        rejects.write_text(rejects_csv(report), encoding="utf-8")
        click.echo(f"rejected rows written to {rejects}", err=True)
    if report.rejected:
        sys.exit(1)


@main.group()
def report() -> None:
    """Reports in the terminal: the same figures as /api/v1/reports."""


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    days, rest = divmod(whole, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s"


@report.command("summary")
@config_option
@data_dir_option
@click.option("--since", default="7d", show_default=True, help="7d, 24h, a date or an ISO time.")
@click.option("--until", help="The same forms (default: now).")
@click.option("--tz", help="Timezone of dates and days (default: [reports] timezone).")
@click.option("--account", multiple=True, help="A channel account id (repeatable).")
@click.option("--channel", multiple=True, help="A channel family: sms, email... (repeatable).")
@click.option("--team", multiple=True, help="A team id (repeatable).")
@click.option("--agent", multiple=True, help="An agent's id or e-mail (repeatable).")
@click.option("--label", multiple=True, help="A conversation label (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON instead.")
def report_summary(
    config: Path | None,
    data_dir: Path | None,
    since: str,
    until: str | None,
    tz: str | None,
    account: tuple[str, ...],
    channel: tuple[str, ...],
    team: tuple[str, ...],
    agent: tuple[str, ...],
    label: tuple[str, ...],
    as_json: bool,
) -> None:
    """The period's figures: conversations opened and resolved, first response
    and resolution times (median and 90th percentile, business hours where the
    team has them), messages in and out, waiting unassigned, SLA breaches and
    satisfaction. Reads the store directly; the hub may be running."""
    import json

    from hub.app import build_report_store
    from hub.clock import SystemClock
    from hub.reports.model import ReportFilter, Summary
    from hub.reports.service import ReportService, period
    from hub.routing.policy import Policy

    settings = settings_from(config, data_dir=data_dir)
    policy = Policy(settings.routing)

    async def work(store: Any) -> Summary:
        reports = await build_report_store(store)
        if reports is None:
            raise click.ClickException("this store has no reports")
        service = ReportService(
            reports,
            store,
            None,
            SystemClock(),
            schedule_for=lambda a, t: policy.rule(a, t).hours,
            timezone=settings.reports.timezone,
        )
        zone = service.zone(tz)
        start, end = period(since, until, service.clock.now(), zone)
        agent_ids = []
        for who in agent:
            if "@" in who:
                found = await store.agent_by_email(who.strip().lower())
                if found is None:
                    raise click.BadParameter(f"no agent with e-mail {who}", param_hint="--agent")
                who = found.id
            agent_ids.append(who)
        return await service.summary(
            ReportFilter(
                since=start,
                until=end,
                accounts=account,
                channels=channel,
                teams=team,
                agents=tuple(agent_ids),
                labels=label,
            ),
            zone,
        )

    summary = run(lambda: with_store(settings, work))
    if as_json:
        click.echo(json.dumps(summary.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(summary.period.timezone)

    def local(moment: Any) -> str:
        return str(moment.astimezone(zone).strftime("%Y-%m-%d %H:%M"))

    kind = "business hours" if summary.business_hours else "wall time"
    satisfaction = summary.satisfaction
    lines = [
        f"Report {local(summary.period.since)} → {local(summary.period.until)}"
        f" ({summary.period.timezone})",
        f"  conversations opened      {summary.opened}",
        f"  conversations resolved    {summary.resolved}",
    ]
    for name, figures in (
        ("first response", summary.first_response),
        ("resolution", summary.resolution),
    ):
        lines.append(
            f"  {name:<26}median {_duration(figures.median_seconds)},"
            f" p90 {_duration(figures.p90_seconds)}"
            f" ({figures.count} conversation{'' if figures.count == 1 else 's'}, {kind})"
        )
    lines += [
        f"  messages in / out         {summary.messages_in} / {summary.messages_out}",
        f"  waiting unassigned now    {summary.waiting_unassigned}"
        + (
            f" (oldest since {local(summary.oldest_waiting_since)})"
            if summary.oldest_waiting_since
            else ""
        ),
        f"  SLA breaches              {summary.sla_breaches}",
        "  satisfaction              "
        + (
            f"{satisfaction.average:.2f} / 5 from {satisfaction.answers} answers,"
            f" {satisfaction.positive_share or 0:.0%} positive (4-5)"
            if satisfaction.average is not None
            else "no answers"
        ),
    ]
    click.echo("\n".join(lines))


@main.group("email")
def email_group() -> None:
    """Tools for the e-mail channel."""


@email_group.command("parse")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option(
    "--max-attachment-bytes",
    type=int,
    default=26_214_400,
    show_default=True,
    help="Attachments larger than this are reported as too large (as the hub would).",
)
def email_parse(file: Path, max_attachment_bytes: int) -> None:
    """Print what the hub reads from an e-mail file (.eml, `-` for stdin) as JSON.

    Always exits 0: input that is not an e-mail (or cannot be read) gives JSON
    with an "error" field, so it can be used on any file an administrator has.
    """
    import json

    from hub.channels.email.parse import parse

    try:
        raw = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        click.echo(json.dumps({"error": f"cannot read {file}: {exc.strerror or exc}"}))
        return
    parsed = parse(raw, max_attachment_bytes=max_attachment_bytes)
    click.echo(json.dumps(parsed.as_json(), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    sys.exit(main())

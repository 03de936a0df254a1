"""A web-chat account's options (`[[accounts]] channel = "webchat"`), validated
at start-up so a typo is a clear error, not a widget that silently misbehaves."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

Language = Literal["en", "vi"]
PrechatField = Literal["name", "email", "phone"]
LANGUAGES: tuple[Language, ...] = ("en", "vi")
DEFAULT_PORTS = {"http": 80, "https": 443}
ANY_ORIGIN = "*"


def normalise_origin(origin: str) -> str:
    """`scheme://host[:port]` as a browser sends it in `Origin` (lower case, no
    default port, no path). Raises ValueError for anything else."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{origin!r} is not an origin like https://shop.example.vn")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise ValueError(f"{origin!r} must be only scheme://host[:port], with no path")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{origin!r} has an invalid port") from exc
    if port is None or port == DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}"
    return f"{parts.scheme}://{host}:{port}"


class WebChatOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    allowed_origins: list[str] = Field(
        min_length=1, description='sites that may open the chat; ["*"] allows any'
    )
    color: str = Field("#0b6e4f", pattern=r"^#[0-9a-fA-F]{6}$")
    title: str | dict[Language, str] = Field("", description="default: the account's name")
    greeting: str | dict[Language, str] = ""
    language: Literal["auto", "en", "vi"] = "auto"
    launcher_side: Literal["right", "left"] = "right"
    launcher_bottom: int = Field(
        20, ge=0, le=400, description="px above the screen's bottom: clear the site's own bar"
    )
    prechat_form: Literal["off", "optional", "required"] = "off"
    prechat_fields: list[PrechatField] = Field(
        default_factory=lambda: list[PrechatField](["name", "email"]), min_length=1
    )
    offline_email_account: str | None = None
    offline_email_after_seconds: float = Field(30.0, ge=0)
    max_message_chars: int = Field(2000, ge=1, le=65_536)
    rate_limit_burst: int = Field(8, ge=1)
    rate_limit_per_minute: float = Field(30.0, gt=0)
    token_max_age_days: int = Field(365, ge=1)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        if ANY_ORIGIN in value:
            if len(value) > 1:
                raise ValueError('"*" allows every site; list it alone')
            return value
        return sorted({normalise_origin(origin) for origin in value})

    def allows(self, origin: str | None) -> bool:
        """Whether a socket opened from a page at `origin` may chat."""
        if self.allowed_origins == [ANY_ORIGIN]:
            return True
        if not origin:
            return False
        try:
            return normalise_origin(origin) in self.allowed_origins
        except ValueError:
            return False

    def text_for(self, value: str | dict[Language, str], language: Language) -> str:
        if isinstance(value, str):
            return value
        return value.get(language) or next(iter(value.values()), "")

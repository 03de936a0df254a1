"""A Twilio account's options, as written under `[[accounts]]` with `channel = "twilio"`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, model_validator

from hub.routing.hours import Schedule


class VoiceOptions(BaseModel):
    """What a caller hears, and who is rung. Every text is said with Twilio <Say>
    in `language`."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    language: str = "vi-VN"
    greeting: str = "Xin chào, cảm ơn quý khách đã gọi. Xin vui lòng chờ trong giây lát."
    ring_seconds: int = Field(20, ge=5, le=120)
    closed_message: str = (
        "Hiện đã ngoài giờ làm việc. Xin quý khách để lại lời nhắn sau tiếng bíp,"
        " chúng tôi sẽ gọi lại sớm nhất."
    )
    voicemail_prompt: str = (
        "Hiện không có nhân viên nào nghe máy. Xin quý khách để lại lời nhắn sau tiếng bíp."
    )
    goodbye: str = "Cảm ơn quý khách. Chúng tôi sẽ gọi lại sớm nhất."
    voicemail_max_seconds: int = Field(120, ge=5, le=3600)
    transcribe: bool = False
    hours: Schedule | None = Field(None, description="opening hours; none: always open")


class TwilioOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: str = Field(min_length=16, description="from `auth_token_env`")
    from_number: str | None = Field(None, description="E.164 Twilio number SMS are sent from")
    messaging_service_sid: str | None = Field(None, pattern=r"^MG[0-9a-fA-F]{32}$")
    strip_diacritics: bool = False
    api_base_url: HttpUrl = HttpUrl("https://api.twilio.com")
    voice: VoiceOptions = Field(default_factory=VoiceOptions)

    @model_validator(mode="after")
    def _has_a_sender(self) -> TwilioOptions:
        if not self.from_number and not self.messaging_service_sid:
            raise ValueError("set from_number or messaging_service_sid (or both)")
        return self

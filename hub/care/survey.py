"""The satisfaction survey's answer: a 1-5 reply to the survey message, or a
signed link the hub serves without login.

The link carries the conversation id and an expiry, signed with a key derived
from the hub key for this purpose only (`hub.keys.derive`), so it can be
neither forged for another conversation nor reused as another credential.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import datetime, timedelta

from aiohttp import web

from hub.clock import Clock
from hub.errors import Forbidden, InvalidRequest, NotFound
from hub.inbox.model import from_ms, to_ms
from hub.inbox.service import InboxService
from hub.keys import derive
from hub.web.public_page import public_page

PURPOSE = "care-survey"
PATH = "/care/survey/{token}"
# A reply that is only a score: "5", " 4 ", "3/5", "5 sao", "5*".
SCORE_REPLY = re.compile(r"^\s*([1-5])\s*(?:/\s*5|\*|sao|stars?)?\s*[.!]?\s*$", re.IGNORECASE)


def score_in(text: str) -> int | None:
    """The score a survey reply gives, or None if it is not just a score."""
    match = SCORE_REPLY.match(text)
    return int(match.group(1)) if match else None


class SurveyLinks:
    def __init__(self, secret_key: bytes, clock: Clock, lifetime: timedelta) -> None:
        self._key = derive(secret_key, PURPOSE)
        self.clock = clock
        self.lifetime = lifetime

    def _mac(self, payload: str) -> str:
        digest = hmac.new(self._key, payload.encode(), hashlib.sha256).digest()[:18]
        return base64.urlsafe_b64encode(digest).decode()

    def token(self, conversation_id: str) -> str:
        expires = to_ms(self.clock.now() + self.lifetime) // 1000
        payload = f"{conversation_id}.{expires}"
        return f"{payload}.{self._mac(payload)}"

    def url(self, public_url: str, conversation_id: str) -> str:
        return public_url.rstrip("/") + PATH.format(token=self.token(conversation_id))

    def conversation_id(self, token: str) -> str:
        """The conversation a token names. Raises Forbidden if it is forged or expired."""
        payload, _, mac = token.rpartition(".")
        conversation_id, _, expires = payload.partition(".")
        if not payload or not hmac.compare_digest(self._mac(payload), mac):
            raise Forbidden("this survey link is not valid")
        try:
            expiry: datetime = from_ms(int(expires) * 1000)
        except ValueError as exc:
            raise Forbidden("this survey link is not valid") from exc
        if self.clock.now() > expiry:
            raise Forbidden("this survey link has expired")
        return conversation_id


SURVEY = web.AppKey("care_survey", SurveyLinks)
SURVEY_INBOX = web.AppKey("care_survey_inbox", InboxService)


def _page(title: str, body: str, status: int = 200) -> web.Response:
    return public_page(title, body, status=status)


async def survey_page(request: web.Request) -> web.Response:
    """The form: five buttons that POST the score (a link preview fetching the
    URL must not answer for the customer)."""
    links = request.app[SURVEY]
    conversation_id = links.conversation_id(request.match_info["token"])
    if await request.app[SURVEY_INBOX].store.get_conversation(conversation_id) is None:
        raise NotFound("this survey is no longer available")
    buttons = "".join(
        f'<button name="score" value="{n}" aria-label="{n}/5">{n}</button>' for n in range(1, 6)
    )
    body = (
        "<p>Bạn hài lòng thế nào với hỗ trợ của chúng tôi? / How satisfied were you?</p>"
        f'<form method="post">{buttons}</form><p>1 = 😞 · 5 = 😀</p>'
    )
    return _page("Đánh giá / Rate us", body)


async def survey_answer(request: web.Request) -> web.Response:
    links = request.app[SURVEY]
    conversation_id = links.conversation_id(request.match_info["token"])
    form = await request.post()
    raw = form.get("score")
    if (
        not isinstance(raw, str)
        or not (raw.strip().isascii() and raw.strip().isdigit())
        or not 1 <= int(raw) <= 5
    ):
        raise InvalidRequest("score must be a whole number from 1 to 5")
    await request.app[SURVEY_INBOX].record_satisfaction(conversation_id, int(raw), how="link")
    return _page("Cảm ơn bạn! / Thank you!", f"<p>{int(raw)}/5</p>")


routes = [web.get(PATH, survey_page), web.post(PATH, survey_answer)]

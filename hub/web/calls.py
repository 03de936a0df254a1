"""Click-to-call: an agent starts a phone call from a conversation.

`POST /api/v1/conversations/{id}/call` (optional body `{"account": "<pbx account>"}`)
rings the agent's own extension first and, once they pick up, the customer's
number. The PBX does the calling; the call then arrives in the timeline like
any other, through the PBX's event stream. The answer is 202 with what the PBX
said when it took the request.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hub.errors import InvalidRequest, NotFound
from hub.inbox.model import Agent
from hub.web.api import INBOX, STORE, me, read_body
from hub.web.permissions import visible_conversation


@runtime_checkable
class Dialer(Protocol):
    """A channel account that can place calls (an Asterisk PBX)."""

    async def place_call(
        self, *, agent: Agent, customer: str, conversation_id: str
    ) -> dict[str, Any]:
        """Ring `agent`, then `customer` (E.164). Returns the PBX's answer to the
        request. Raises InvalidRequest when the agent cannot be called from here,
        ProviderUnavailable when the PBX is unreachable, ProviderRejected when it
        refuses."""
        ...


DIALERS = web.AppKey("dialers", dict[str, Dialer])


class CallBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account: str | None = Field(None, description="the PBX account to call from")


def choose_dialer(
    dialers: dict[str, Dialer], conversation_account: str, wanted: str | None
) -> Dialer:
    """The account named in the request; else the conversation's own account if it
    can call; else the only account that can."""
    if wanted is not None:
        if wanted not in dialers:
            raise InvalidRequest(f"account {wanted!r} cannot place calls")
        return dialers[wanted]
    if conversation_account in dialers:
        return dialers[conversation_account]
    if len(dialers) == 1:
        return next(iter(dialers.values()))
    if not dialers:
        raise InvalidRequest("no account on this hub can place calls (configure a PBX account)")
    raise InvalidRequest(
        f"several accounts can place calls ({', '.join(sorted(dialers))}): name one as 'account'"
    )


routes = web.RouteTableDef()


@routes.post("/api/v1/conversations/{id}/call")
async def call_contact(request: web.Request) -> web.Response:
    body = await read_body(request, CallBody)
    conversation = await visible_conversation(
        request.app[INBOX], me(request), request.match_info["id"]
    )
    contact = await request.app[STORE].get_contact(conversation.contact_id)
    if contact is None:
        raise NotFound(f"contact {conversation.contact_id} does not exist")
    phone = next((i.address for i in contact.identities if i.channel == "phone"), None)
    if phone is None:
        raise InvalidRequest("the contact has no phone number to call")
    agent = me(request)
    dialer = choose_dialer(request.app[DIALERS], conversation.account_id, body.account)
    answer = await dialer.place_call(agent=agent, customer=phone, conversation_id=conversation.id)
    return web.json_response(
        {"status": "calling", "agent_id": agent.id, "customer": phone, "pbx": answer},
        status=202,
    )

"""Who may do what, decided on the server for every request (the page only
hides what the API would refuse anyway).

- admin: everything — channels, teams, rules, agents, the audit log;
- agent: the conversations they may see (`Visibility`: their own, their
  teams', and those in no team), contacts, canned responses;
- marketer: contacts, segments, campaigns; no conversations at all (they are
  private between the customer and the company's support).

A conversation an agent may not see answers 404, exactly like one that does
not exist, so guessing ids tells nothing.
"""

from __future__ import annotations

from hub.errors import Forbidden, NotFound
from hub.inbox.model import Agent, Conversation, Role
from hub.inbox.service import InboxService
from hub.inbox.store import Visibility


def require(agent: Agent, *roles: Role) -> None:
    """Raise Forbidden unless the agent has one of `roles`."""
    if agent.role not in roles:
        raise Forbidden(f"this needs the {' or '.join(roles)} role")


def conversation_scope(agent: Agent) -> Visibility | None:
    """Which conversations the agent may see (None: all of them)."""
    if agent.role == "admin":
        return None
    if agent.role == "agent":
        return Visibility(agent.id, tuple(agent.team_ids))
    raise Forbidden("marketers do not see conversations")


def may_see(agent: Agent, conversation: Conversation) -> bool:
    scope = conversation_scope(agent)
    return (
        scope is None
        or conversation.assignee_id == agent.id
        or conversation.team_id is None
        or conversation.team_id in scope.team_ids
    )


async def visible_conversation(
    inbox: InboxService, agent: Agent, conversation_id: str
) -> Conversation:
    """The conversation, if it exists and the agent may see it; NotFound otherwise."""
    conversation = await inbox.conversation(conversation_id)
    if not may_see(agent, conversation):
        raise NotFound(f"conversation {conversation_id} does not exist")
    return conversation


def may_assign_to(agent: Agent, assignee: Agent | None, team_id: str | None) -> None:
    """An agent may take or hand over a conversation within their teams; an admin
    anywhere. Raise Forbidden otherwise."""
    if agent.role == "admin":
        return
    if team_id is not None and team_id not in agent.team_ids:
        raise Forbidden("you can move a conversation only to one of your teams")
    if assignee is not None and assignee.role == "marketer":
        raise Forbidden("marketers do not take conversations")

"""Who may take a conversation, and in which order: the routing decision as a
pure function of the agents, the conversation and the configured rule.

Kept free of I/O so the router, the waiting queue and the benchmark all decide
the same way, and so a decision is easy to test. Taking the conversation is
the store's atomic compare-and-set (`Store.assign_within_capacity`); this
module only proposes who should try first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hub.inbox.model import EPOCH, Agent, Conversation
from hub.routing.hours import Schedule, is_open
from hub.settings import LanguageMatch, RouteRule, RoutingSettings, Strategy

ROUTABLE_ROLES = ("admin", "agent")


@dataclass(frozen=True)
class Rule:
    """The effective routing rule for one conversation (account → team → defaults)."""

    strategy: Strategy = "round_robin"
    sticky_days: int = 0
    language: LanguageMatch = "prefer"
    skills: tuple[str, ...] = ()
    overflow: str | None = None
    hours: Schedule | None = None
    lead: str | None = None


@dataclass(frozen=True)
class Request:
    """What the decision needs to know about one conversation."""

    conversation: Conversation
    language: str | None = None
    # The contact's owner, then the agent who last handled them within the
    # sticky window: tried first when available.
    preferred: tuple[str, ...] = ()
    # Agents never to propose (the one an SLA breach takes it away from).
    excluded: frozenset[str] = field(default_factory=frozenset)


class Policy:
    """The configured rules, resolved per conversation."""

    def __init__(self, settings: RoutingSettings) -> None:
        self.settings = settings

    def rule(self, account_id: str | None, team_id: str | None) -> Rule:
        defaults = self.settings
        values: dict[str, Any] = {
            "strategy": defaults.strategy,
            "sticky_days": defaults.sticky_days,
            "language": defaults.language,
        }
        layers: list[RouteRule] = []
        if team_id is not None and team_id in defaults.teams:
            layers.append(defaults.teams[team_id])
        if account_id is not None and account_id in defaults.accounts:
            layers.append(defaults.accounts[account_id])  # the account wins
        for layer in layers:
            for name in RouteRule.model_fields:
                value = getattr(layer, name)
                if value is not None:
                    values[name] = tuple(value) if name == "skills" else value
        return Rule(**values)

    def candidates(self, agents: Sequence[Agent], request: Request, now: datetime) -> list[Agent]:
        """Agents who may take the conversation now, best first: its team's,
        else (nobody there, or the team closed) its overflow team's. Empty: it
        waits."""
        conversation = request.conversation
        rule = self.rule(conversation.account_id, conversation.team_id)
        ranked = self._team_candidates(agents, request, rule, conversation.team_id, now)
        if ranked or rule.overflow is None:
            return ranked
        overflow_rule = self.rule(None, rule.overflow)
        # The overflow team's people, hours and order; the conversation's needs.
        merged = Rule(
            strategy=overflow_rule.strategy,
            sticky_days=rule.sticky_days,
            language=rule.language,
            skills=rule.skills,
            hours=overflow_rule.hours,
        )
        return self._team_candidates(agents, request, merged, rule.overflow, now)

    def _team_candidates(
        self,
        agents: Sequence[Agent],
        request: Request,
        rule: Rule,
        team_id: str | None,
        now: datetime,
    ) -> list[Agent]:
        if rule.hours is not None and not is_open(now, rule.hours):
            return []
        skills = set(rule.skills)
        available = [
            a
            for a in agents
            if a.active
            and a.presence == "online"
            and a.role in ROUTABLE_ROLES
            and a.open_count < a.capacity
            and (team_id is None or team_id in a.team_ids)
            and skills.issubset(a.skills)
            and a.id not in request.excluded
        ]
        if request.language is not None and rule.language != "ignore":
            speakers = [a for a in available if request.language in a.languages]
            if speakers or rule.language == "require":
                available = speakers
        ranked = order(available, rule.strategy)
        if rule.sticky_days and request.preferred:
            by_id = {a.id: a for a in ranked}
            first = list(dict.fromkeys(p for p in request.preferred if p in by_id))
            ranked = [by_id[p] for p in first] + [a for a in ranked if a.id not in first]
        return ranked


def order(agents: Iterable[Agent], strategy: Strategy) -> list[Agent]:
    """Round-robin: least recently assigned first. Least-loaded: lowest share of
    capacity in use first, then least recently assigned."""
    if strategy == "least_loaded":
        return sorted(
            agents,
            key=lambda a: (a.open_count / max(a.capacity, 1), a.last_assigned_at or EPOCH, a.id),
        )
    return sorted(agents, key=lambda a: (a.last_assigned_at or EPOCH, a.id))

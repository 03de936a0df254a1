"""A campaign message for one recipient: rendered from the campaign's template,
dressed for its channel (an SMS gets the account's opt-out instruction, an
e-mail its List-Unsubscribe headers), and how a send cut off by a crash is
checked before it is tried again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from hub.campaigns.model import CONSENT_KEY, Addressee, Campaign, DueSend, Recipient
from hub.campaigns.unsubscribe import UnsubscribeLinks
from hub.care.templates import Template, Templates, contact_variables, language_of
from hub.channels.base import Channel, OutboundMessage
from hub.inbox.model import Contact

# The line under every campaign e-mail, in the recipient's language (else
# English), after the "-- " that mail clients show as the start of a footer.
UNSUBSCRIBE_FOOTER = {
    "vi": "Hủy đăng ký nhận thư: {url}",
    "en": "Unsubscribe: {url}",
}

# What a campaign's template may use besides contact, company and now.
CAMPAIGN_VARIABLES = frozenset({"campaign", "unsubscribe_url"})
# What the campaign page lists for people writing a template.
TEMPLATE_VARIABLES = (
    "contact.name",
    "contact.given_name",
    "contact.phone",
    "contact.email",
    'contact.attributes.city | default("")',
    "company.name",
    "campaign.name",
    "now",
    "unsubscribe_url",
)


@dataclass(frozen=True)
class Checked:
    """What became of a send a dead worker began: `sent` (with the provider's id),
    `not_sent`, or `unknown` (the provider cannot be asked)."""

    outcome: Literal["sent", "not_sent", "unknown"]
    external_id: str | None = None


class CampaignMessages:
    """Builds each recipient's message for one campaign."""

    def __init__(
        self,
        campaign: Campaign,
        templates: Templates,
        links: UnsubscribeLinks,
        *,
        opt_out_text: str = "",
        company: str = "",
    ) -> None:
        self.campaign = campaign
        self.links = links
        self.opt_out_text = opt_out_text
        self.company = company
        self.default_language = templates.default_language
        self.text: Template = templates.compile(campaign.text, f"campaign {campaign.name!r}")
        self.subject: Template = templates.compile(
            campaign.subject, f"campaign {campaign.name!r} subject"
        )
        self.uses_unsubscribe_url = (
            "unsubscribe_url" in self.text.variables | self.subject.variables
        )

    def check(self) -> None:
        """Raise TemplateError naming the problem if the templates cannot render."""
        self.text.check(CAMPAIGN_VARIABLES)
        self.subject.check(CAMPAIGN_VARIABLES)

    def unsubscribe_url(self, contact_id: str) -> str:
        key = CONSENT_KEY[self.campaign.channel]
        return self.links.url(self.campaign.id, contact_id, key)

    def render(self, contact: Contact | Addressee, now: datetime) -> tuple[str, str]:
        """(text, subject) for this contact. Raises TemplateError."""
        if isinstance(contact, Contact):
            contact = Addressee.of(contact, self.campaign.channel)
        context: dict[str, Any] = {
            "contact": contact_variables(contact, default_language=self.default_language),
            "company": {"name": self.company},
            "now": now.date(),
            "campaign": {"id": self.campaign.id, "name": self.campaign.name},
        }
        if self.uses_unsubscribe_url:  # a signature per recipient: only when used
            context["unsubscribe_url"] = self.unsubscribe_url(contact.id)
        rendered = self.text.render(context)
        subject = rendered.subject
        if self.campaign.subject:
            subject = self.subject.render(context).text or subject
        text = rendered.text
        if self.campaign.channel == "sms" and self.opt_out_text:
            text = f"{text}\n{self.opt_out_text}"
        return text, subject

    def outbound(
        self, recipient: Recipient | DueSend, contact: Contact | Addressee, now: datetime
    ) -> OutboundMessage:
        text, subject = self.render(contact, now)
        headers: dict[str, str] = {}
        if self.campaign.channel == "email":
            url = self.unsubscribe_url(contact.id)
            # RFC 8058: one-click unsubscribe by POST to the https link; RFC 2369.
            headers = {
                "List-Unsubscribe": f"<{url}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "Precedence": "bulk",
            }
            language = language_of(contact.language) or self.default_language
            footer = UNSUBSCRIBE_FOOTER.get(language, UNSUBSCRIBE_FOOTER["en"])
            text = f"{text}\n\n-- \n{footer.format(url=url)}"
        return OutboundMessage(
            message_id=recipient.key,
            conversation_id=self.campaign.id,
            account_id=self.campaign.account_id,
            to=recipient.address,
            contact_name=contact.name,
            text=text,
            subject=subject,
            automated=True,
            # The same Date on every try: a resent e-mail is the same message.
            created_at=self.campaign.launched_at or now,
            headers=headers,
        )


async def check_sent(channel: Channel, recipient: Recipient, message: OutboundMessage) -> Checked:
    """Ask the provider whether a send a dead worker began went out.

    E-mail (SMTP cannot be asked afterwards) is sent in two steps: the row gets
    the Message-ID just before the final "." that makes the server take the
    message (`Channel.send_with_handover`). A row with it went out; a row without
    it never completed DATA, and the server dropped the transaction with the
    connection, so it is sent again without a duplicate.

    Twilio has no such last step, but keeps every message and lists them by
    recipient: a match is recorded as sent; no match means the request never
    reached Twilio, so it is sent now.

    A channel with neither answers `unknown`: sent again with the same bytes.
    """
    if recipient.external_id:
        return Checked("sent", recipient.external_id)
    if channel.hands_over:
        return Checked("not_sent")
    finder = getattr(channel, "find_sent", None)
    if finder is None:
        return Checked("unknown")
    since = (recipient.sending_at or message.created_at) - timedelta(minutes=5)
    sid = await finder(message.to, message.text, since)
    return Checked("sent", sid) if sid else Checked("not_sent")

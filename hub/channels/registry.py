"""Channel families by name: the list of channels is data, not an `if` chain.

Accounts in the config name their family (`channel = "api"`); classes are
imported only when an account uses them, so a provider's library is needed
only by companies that use that provider.
"""

from __future__ import annotations

from importlib import import_module

from hub.channels.base import Channel
from hub.errors import ConfigError

FAMILIES: dict[str, str] = {
    "api": "hub.channels.api:ApiChannel",
    "email": "hub.channels.email.channel:EmailChannel",
    "webchat": "hub.channels.webchat:WebChatChannel",
    "telegram": "hub.channels.telegram:TelegramChannel",
    "zalo": "hub.channels.zalo.channel:ZaloChannel",
    "messenger": "hub.channels.messenger:MessengerChannel",
    "whatsapp": "hub.channels.whatsapp:WhatsAppChannel",
    "twilio": "hub.channels.twilio.channel:TwilioChannel",
    "asterisk": "hub.channels.asterisk.channel:AsteriskChannel",
    "cti": "hub.channels.cti:CtiChannel",
}


def channel_class(family: str) -> type[Channel]:
    """The class for a channel family; ConfigError if there is none."""
    try:
        target = FAMILIES[family]
    except KeyError:
        known = ", ".join(sorted(FAMILIES))
        raise ConfigError(f"unknown channel {family!r} (known: {known})") from None
    module, _, name = target.partition(":")
    cls: type[Channel] = getattr(import_module(module), name)
    return cls

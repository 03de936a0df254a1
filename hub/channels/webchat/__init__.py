"""The web-chat channel family: the widget, its socket, and sending to visitors."""

from hub.channels.webchat.channel import WebChatChannel

__all__ = ["WebChatChannel"]

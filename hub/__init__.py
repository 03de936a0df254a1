"""hub: an omnichannel messaging hub (shared inbox, router, care messages, campaigns)."""

__version__ = "0.1.0"

"""Automation rules and care messages.

- `rules`: the `[[care.rules]]` configuration, checked at start-up;
- `engine`: listens to the inbox's events, checks conditions, runs actions;
- `messages`: care messages decided once (a care task per key) and sent through
  the inbox's reply path, with consent and the contact's daytime respected;
- `hours`: business hours (the seam to `hub.routing.hours`) and daytime;
- `survey`: the satisfaction survey's signed link and score replies;
- `webhooks`: signed outgoing webhooks, sent by a worker job;
- `templates`: Jinja2 (sandboxed) templates per language and channel.
"""

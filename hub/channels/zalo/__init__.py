"""Zalo Official Account (OA API v3): the first messaging app of Vietnamese customers.

- `events`: the webhook's events, its `X-ZEvent-Signature`, and `normalise()`.
- `tokens`: the OA access token and its single-use refresh token, kept in the
  store and refreshed by one process at a time.
- `channel`: the webhook route and sending consultation messages ("tin tư vấn").
"""

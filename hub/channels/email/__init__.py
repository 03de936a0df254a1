"""The e-mail channel: support mailboxes read over IMAP (IDLE or polling) or
received by hub's own SMTP listener, and replies sent over SMTP so that mail
clients keep one thread.

One module per responsibility: `parse` (MIME in, pure), `charsets`,
`content` (HTML, quotes), `automated` (loops), `dsn` (bounces), `compose`
(MIME out, pure), `signing` (DKIM), `send` (SMTP out), `imap` (poller),
`smtp_in` (listener), `channel` (the account: ties them together).
"""

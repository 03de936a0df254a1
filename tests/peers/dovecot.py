"""A real Dovecot IMAP server for the tests (Debian `dovecot-imapd`).

One server per test session, on a free loopback port, with a throwaway
config and maildirs in a temporary folder; each test gets its
own mailbox user (`Dovecot.new_user()`), so tests never see each other's mail.
Messages go in through IMAP APPEND (`Mailbox.append`), the way a mail server's
delivery agent puts them there.

Where `dovecot` is not installed the fixture skips, naming the package.
"""

from __future__ import annotations

import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from hub.inbox.model import new_id

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
MISSING = (
    "dovecot is not installed (Debian package dovecot-imapd; `.ci/run` installs it)"
    if not os.path.exists(DOVECOT)
    else None
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


CONFIG = """
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
mail_fsync = never
imap_idle_notify_interval = 1 secs
# Any user name logs in with the one test password (a passwd-file would be
# re-read at most once a second, too slow for users made per test).
passdb {{
  driver = static
  args = password={password}
}}
userdb {{
  driver = static
  args = uid=mail gid=mail home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"""


@dataclass(frozen=True)
class Mailbox:
    """One IMAP user on the test server."""

    host: str
    port: int
    username: str
    password: str

    def client(self) -> imaplib.IMAP4:
        imap = imaplib.IMAP4(self.host, self.port, timeout=30)
        imap.login(self.username, self.password)
        return imap

    def append(self, *messages: bytes, mailbox: str = "INBOX") -> None:
        """Deliver messages into the mailbox (IMAP APPEND), in order."""
        imap = self.client()
        try:
            for raw in messages:
                status, answer = imap.append(mailbox, None, None, raw)
                if status != "OK":
                    raise RuntimeError(f"APPEND refused: {answer!r}")
        finally:
            imap.logout()

    def create(self, mailbox: str) -> None:
        imap = self.client()
        try:
            imap.create(mailbox)
        finally:
            imap.logout()

    def delete(self, mailbox: str) -> None:
        imap = self.client()
        try:
            imap.delete(mailbox)
        finally:
            imap.logout()

    def count(self, mailbox: str = "INBOX") -> int:
        imap = self.client()
        try:
            _, data = imap.select(mailbox, readonly=True)
            return int(data[0] or 0)
        finally:
            imap.logout()


class Dovecot:
    def __init__(self) -> None:
        # Not under pytest's tmp_path: that is private to root (0700), and the
        # mail user Dovecot switches to must be able to reach its maildirs.
        self.root = Path(tempfile.mkdtemp(prefix="hub-dovecot-"))
        self.root.chmod(0o755)
        self.port = _free_port()
        self.config = self.root / "dovecot.conf"
        self.password = f"pw-{new_id()}"

    def start(self) -> Dovecot:
        mail = pwd.getpwnam("mail")
        for folder in ("run", "state", "mail"):
            (self.root / folder).mkdir()
        os.chown(self.root / "mail", mail.pw_uid, mail.pw_gid)
        self.config.write_text(
            CONFIG.format(root=self.root, port=self.port, password=self.password)
        )
        # The master daemonises and keeps its standard streams: give it a file,
        # not a pipe that would never reach end-of-file.
        with open(self.root / "start.log", "wb") as output:
            subprocess.run(
                [DOVECOT, "-c", str(self.config)],
                check=True,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not start:\n{self.log()}")

    def stop(self) -> None:
        subprocess.run(
            [DOVECOT, "-c", str(self.config), "stop"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Let the master finish before its folder goes away.
        deadline = time.monotonic() + 10
        while (self.root / "run" / "master.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(self.root, ignore_errors=True)

    def new_user(self, name: str = "support") -> Mailbox:
        """A user of its own (its maildir appears at the first login)."""
        return Mailbox("127.0.0.1", self.port, f"{name}-{new_id()[-10:]}", self.password)

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

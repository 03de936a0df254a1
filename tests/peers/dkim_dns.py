"""The DNS side of DKIM for tests: an RSA key made with openssl, its public half
published as the TXT record a receiver looks up (`selector._domainkey.domain`),
and `verify`, which checks wire bytes the way a receiving server does (dkimpy
with this record as its DNS)."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import dkim


class DkimDns:
    def __init__(self, folder: Path, *, selector: str = "hub2026", domain: str = "shop.vn") -> None:
        key = folder / "dkim.pem"
        subprocess.run(
            ["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True
        )
        public = subprocess.run(
            ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
            check=True,
            capture_output=True,
        ).stdout
        self.selector = selector
        self.domain = domain
        self.private_key = key.read_text()
        self.record = f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}".encode()
        self.lookups: list[bytes] = []

    def txt(self, name: bytes, timeout: int = 5) -> bytes | None:
        """dkimpy's `dnsfunc`: the TXT record for `name`, None for any other name."""
        self.lookups.append(name)
        if name == f"{self.selector}._domainkey.{self.domain}.".encode():
            return self.record
        return None

    def verify(self, data: bytes) -> bool:
        return bool(dkim.verify(data, dnsfunc=self.txt))

    @staticmethod
    def signed_headers(data: bytes) -> list[str]:
        """The h= list of the first DKIM-Signature in `data`, lower-cased."""
        signature = dkim.DKIM(data)
        for name, value in signature.headers:
            if name.lower() == b"dkim-signature":
                tags = dkim.util.parse_tag_value(value)
                return [h.strip().decode().lower() for h in tags[b"h"].split(b":")]
        raise AssertionError("no DKIM-Signature")

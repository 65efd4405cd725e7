"""Message authentication with the authkeys key.

Every cluster message ends with a code computed over all the bytes before it:

* ``sha256``: HMAC-SHA256 with the key (the native configuration's method);
* ``sha1`` / ``md5``: HMAC-SHA1 / HMAC-MD5 with the key (heartbeat authkeys ``sha1`` / ``md5``);
* ``crc``: a CRC-32 of the bytes, no key at all. It catches line noise, not forgery: anybody on
  the link can forge a valid message. heartbeat documents crc as "no security" (authkeys(5));
  `Authenticator.authenticates` is False for it so the driver can warn loudly at start-up.

Comparison of codes is constant-time (`hmac.compare_digest`). The method and the authkeys index
(`auth N`) travel in the clear in the header so a mismatch is reported as bad auth, not as garbage.
"""

from __future__ import annotations

import hashlib
import hmac
import zlib
from dataclasses import dataclass, field

# wire codes of the methods (header byte 4); never renumber
METHOD_CODES = {"crc": 0, "md5": 1, "sha1": 2, "sha256": 3}
METHOD_NAMES = {v: k for k, v in METHOD_CODES.items()}
MAC_LENGTHS = {"crc": 4, "md5": 16, "sha1": 20, "sha256": 32}


@dataclass(frozen=True)
class Authenticator:
    """Signs and verifies message bytes with one authkeys entry (method, key, index)."""

    method: str = "sha256"
    key: bytes = field(default=b"", repr=False)
    index: int = 1

    def __post_init__(self) -> None:
        if self.method not in METHOD_CODES:
            raise ValueError(f"unknown auth method {self.method!r}; expected one of "
                             f"{', '.join(METHOD_CODES)}")
        if isinstance(self.key, str):
            object.__setattr__(self, "key", self.key.encode("utf-8"))
        if self.method != "crc" and not self.key:
            raise ValueError(f"auth method {self.method} needs a key")
        if not 1 <= self.index <= 15:
            raise ValueError(f"authkeys index must be 1..15, got {self.index}")

    @classmethod
    def from_config(cls, auth) -> "Authenticator":
        """From a `config.model.Auth` (method, key, index)."""
        return cls(method=auth.method, key=auth.key.encode("utf-8"), index=auth.index)

    @property
    def code(self) -> int:
        return METHOD_CODES[self.method]

    @property
    def mac_length(self) -> int:
        return MAC_LENGTHS[self.method]

    @property
    def authenticates(self) -> bool:
        """False for crc: messages are checked for corruption only, anybody can forge them."""
        return self.method != "crc"

    def sign(self, data: bytes) -> bytes:
        if self.method == "crc":
            return (zlib.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")
        return hmac.new(self.key, data, getattr(hashlib, self.method)).digest()

    def verify(self, data: bytes, mac: bytes) -> bool:
        return len(mac) == self.mac_length and hmac.compare_digest(self.sign(data), mac)

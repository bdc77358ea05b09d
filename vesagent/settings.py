"""Settings of ``vesagent run``: every environment variable and flag of CONTRACT.md section 2.

Settings are built once in ``cli`` and passed down as an argument; nothing deeper reads
``os.environ``.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


@dataclass(frozen=True)
class Shard:
    """``i/n``: this replica owns the regions whose stable hash mod ``n`` equals ``index``."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            left, right = text.split("/")
            index, count = int(left), int(right)
        except ValueError:
            raise ValueError(f"shard must look like i/n (e.g. 0/3), got {text!r}") from None
        if count < 1 or not 0 <= index < count:
            raise ValueError(f"shard {text!r}: need n >= 1 and 0 <= i < n")
        return cls(index, count)

    def owns(self, region_path: str) -> bool:
        """Stable across processes and hosts: sha256 of ``cloud-owner/cloud-region-id``."""
        if self.count == 1:
            return True
        digest = hashlib.sha256(region_path.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


class Settings(BaseModel):
    """The daemon's settings; defaults are the contract's."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    aai_url: str = Field(description="A&AI base URL, e.g. https://aai.onap:8443")
    aai_username: str = "AAI"
    aai_password: SecretStr = SecretStr("AAI")
    aai_api_version: str = "v13"
    aai_ca_file: str | None = None
    aai_insecure: bool = False
    aai_sync_interval: float = Field(30.0, ge=0.2)
    state_dir: Path = Path("./var")
    listen: str = "127.0.0.1:9009"
    shard: Shard = Shard()
    outbox_max_age: float = Field(7200.0, ge=60)
    """Seconds an undelivered event is kept: twice the hour the VES requirements ask for."""
    outbox_max_events: int = Field(1_000_000, ge=1000)
    outbox_max_bytes: int = Field(512 * 2**20, ge=2**20)
    api_username: str | None = None
    api_password: SecretStr | None = None
    api_read_username: str | None = None
    """A user that may only read (GET, ``vesagent status``); the API user may also change."""
    api_read_password: SecretStr | None = None
    api_auth: Literal["auto", "basic", "none"] = "auto"
    """``auto``: Basic auth when credentials are given, and they are required on a non-loopback
    listener; ``basic``: credentials always required; ``none``: no authentication at all
    (explicit opt-in, logged as a warning)."""
    tls_cert: str | None = None
    """PEM certificate (chain) of the agent's own listener; with ``tls_key`` it serves HTTPS."""
    tls_key: str | None = None
    aai_client_cert: str | None = None
    """PEM client certificate (and ``aai_client_key``) presented to A&AI (mutual TLS)."""
    aai_client_key: str | None = None
    ves_client_cert: str | None = None
    """PEM client certificate (and ``ves_client_key``) presented to every VES collector."""
    ves_client_key: str | None = None
    ves_ca_file: str | None = None
    """CA bundle for https collectors whose ``ves_subscription`` names no ``ca_file``."""
    keystone_client_cert: str | None = None
    """PEM client certificate (and ``keystone_client_key``) presented to Keystone and Nova."""
    keystone_client_key: str | None = None
    log_format: str = "json"
    log_level: str = "info"
    # -- shared state in PostgreSQL and region leases (issue 16) ------------------------------
    state_url: SecretStr | None = None
    """``postgresql://...``: shared store and leases; unset: SQLite in ``state_dir``. Secret:
    the URL may carry the database password."""
    lease_ttl: float = Field(15.0, ge=1)
    """Seconds after which a region whose owner stopped renewing is taken over."""
    complex: tuple[str, ...] = ()
    """``physical-location-id``s: take only regions related to these complexes (empty: all)."""

    @field_validator("state_url", mode="before")
    @classmethod
    def _state_url(cls, value: object) -> object:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text in (None, ""):
            return None
        if not isinstance(text, str) or not text.startswith(
            ("postgresql://", "postgres://", "sqlite://")
        ):
            # Never echo the value: it may hold a password.
            raise ValueError("must start with postgresql:// (or sqlite:// for a local file)")
        return text

    @field_validator("complex", mode="before")
    @classmethod
    def _complex(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    # -- end of issue 16 settings ----------------------------------------------------------------

    @field_validator("aai_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("shard", mode="before")
    @classmethod
    def _shard(cls, value: object) -> object:
        return Shard.parse(value) if isinstance(value, str) else value

    @field_validator("log_format")
    @classmethod
    def _fmt(cls, value: str) -> str:
        if value not in ("json", "console"):
            raise ValueError("must be json or console")
        return value

    @field_validator("aai_api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not (value == "latest" or (value[:1] == "v" and value[1:].isdigit())):
            raise ValueError("must look like v13 (or latest)")
        return value

    @model_validator(mode="after")
    def _pairs(self) -> Settings:
        pairs = (
            ("api_username", "api_password"),
            ("api_read_username", "api_read_password"),
            ("tls_cert", "tls_key"),
            ("aai_client_cert", "aai_client_key"),
            ("ves_client_cert", "ves_client_key"),
            ("keystone_client_cert", "keystone_client_key"),
        )
        for first, second in pairs:
            if (getattr(self, first) is None) != (getattr(self, second) is None):
                raise ValueError(f"{first} and {second} go together: give both or neither")
        if self.api_read_username and self.api_read_username == self.api_username:
            raise ValueError("api_read_username must differ from api_username")
        if self.api_auth == "none" and (self.api_username or self.api_read_username):
            raise ValueError("api_auth none contradicts the API credentials given: drop one")
        if self.api_auth == "basic" and not self.api_username:
            raise ValueError("api_auth basic needs api_username and api_password")
        return self

    @property
    def api_users(self) -> dict[str, tuple[str, bool]]:
        """``{username: (password, may_change)}`` of the REST API; empty when it is open."""
        users: dict[str, tuple[str, bool]] = {}
        if self.api_read_username and self.api_read_password is not None:
            users[self.api_read_username] = (self.api_read_password.get_secret_value(), False)
        if self.api_username and self.api_password is not None:
            users[self.api_username] = (self.api_password.get_secret_value(), True)
        return users

    @property
    def listen_is_loopback(self) -> bool:
        """True when only this host can reach the listener (127.0.0.0/8, ::1, localhost)."""
        host = self.listen_host_port[0]
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False  # a host name could resolve to anything: treat it as exposed

    def open_api_refusal(self) -> str | None:
        """Why the agent must not start with these settings (None: it may).

        An API without credentials on an address others can reach lets anyone on the
        network edit every region's configuration: refused unless ``api_auth`` is ``none``.
        """
        if self.api_users or self.api_auth == "none" or self.listen_is_loopback:
            return None
        return (
            f"listening on {self.listen} (not loopback) without API credentials: set "
            "VESAGENT_API_USERNAME and VESAGENT_API_PASSWORD (or _PASSWORD_FILE), or pass "
            "--api-auth none to run the API open on purpose"
        )

    @property
    def listen_host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return (host or "127.0.0.1").strip("[]"), int(port)

"""Settings of ``vesagent run``: every environment variable and flag of CONTRACT.md section 2.

Settings are built once in ``cli`` and passed down as an argument; nothing deeper reads
``os.environ``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


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

    @property
    def listen_host_port(self) -> tuple[str, int]:
        host, _, port = self.listen.rpartition(":")
        return (host or "127.0.0.1").strip("[]"), int(port)

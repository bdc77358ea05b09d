"""``vesagent_config.notifications``: where a region's Nova notifications are heard.

``{"transport_url": "rabbit://user:pass@rabbit:5672/", "topic": "vesagent_notifications",
"exchange": "nova", "safety_poll_interval": 60}`` (CONTRACT.md section 4). Regions whose
(transport_url, topic, exchange) are equal share one listener: ``ListenerKey``.

The password inside ``transport_url`` is a secret: ``mask_transport_url`` is the one place that
hides it, for logs, status, metrics and the REST API.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_core import PydanticCustomError

from vesagent.secrets import mask_url_password as mask_transport_url

DEFAULT_TOPIC = "vesagent_notifications"
DEFAULT_EXCHANGE = "nova"
DEFAULT_SAFETY_POLL_INTERVAL = 60.0
MIN_SAFETY_POLL_INTERVAL = 1.0
MAX_SAFETY_POLL_INTERVAL = 86400.0
SCHEMES = ("rabbit", "kombu", "amqp")
"""Transport drivers oslo.messaging can listen with for notifications (``kombu``/``amqp`` are
aliases some deployments still write; TLS is a ``?ssl=1`` query, as in nova.conf)."""
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,255}")


def _fail(message: str) -> NoReturn:
    raise PydanticCustomError("vesagent", "{message}", {"message": message})


class NotificationsConfig(BaseModel):
    """One region's notification source; ``transport_url`` is a ``SecretStr`` (holds a password)."""

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    # The schema marks it: masked on GET, kept on POST only while its hosts are unchanged.
    transport_url: SecretStr = Field(json_schema_extra={"secret": "url"})
    topic: str = DEFAULT_TOPIC
    exchange: str = DEFAULT_EXCHANGE
    safety_poll_interval: float = DEFAULT_SAFETY_POLL_INTERVAL
    """Seconds between two server listings while the listener is connected (1 .. 86400)."""

    @field_validator("transport_url", mode="before")
    @classmethod
    def _url(cls, value: object) -> str:
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not isinstance(value, str) or not value.strip():
            _fail('must be a transport URL such as "rabbit://user:password@host:5672/"')
        text = value.strip()
        shown = mask_transport_url(text)[:80]
        if not text.isascii() or not text.isprintable() or " " in text:
            _fail(f"must be printable ASCII without spaces, got {shown!r}")
        try:
            parts = urlsplit(text)
        except ValueError:
            _fail(f"is not a valid URL: {shown!r}")
        if parts.scheme.lower() not in SCHEMES:
            _fail(f"must start with rabbit:// (or {', '.join(SCHEMES[1:])}), got {shown!r}")
        hosts = [h.rpartition("@")[2] for h in parts.netloc.split(",")]
        if not all(h and not h.startswith(":") for h in hosts):
            _fail(f"must name a host for each broker, got {shown!r}")
        for host in hosts:
            port = host.rpartition(":")[2] if ":" in host and not host.endswith("]") else ""
            if port and (not port.isdigit() or not 0 < int(port) < 65536):
                _fail(f"has an invalid port {port!r}")
        return text

    @field_validator("topic", "exchange", mode="before")
    @classmethod
    def _name(cls, value: object, info: Any) -> str:
        if value is None:
            return DEFAULT_TOPIC if info.field_name == "topic" else DEFAULT_EXCHANGE
        if not isinstance(value, str) or not _NAME.fullmatch(value.strip()):
            _fail("must be a name of letters, digits, '_', '-' or '.' (at most 255)")
        return value.strip()

    @field_validator("safety_poll_interval", mode="before")
    @classmethod
    def _safety(cls, value: object) -> float:
        if value is None:
            return DEFAULT_SAFETY_POLL_INTERVAL
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            _fail("must be a number of seconds")
        try:
            number = float(value)
        except ValueError:
            _fail(f"must be a number of seconds, got {str(value)[:40]!r}")
        if not MIN_SAFETY_POLL_INTERVAL <= number <= MAX_SAFETY_POLL_INTERVAL:
            _fail("must be between 1 and 86400 seconds")
        return number

    @property
    def listener_key(self) -> ListenerKey:
        return ListenerKey(self.transport_url.get_secret_value(), self.topic, self.exchange)

    @property
    def shown_url(self) -> str:
        """The transport URL with its password masked, for logs, status and the API."""
        return mask_transport_url(self.transport_url.get_secret_value())


@dataclass(frozen=True)
class ListenerKey:
    """What makes two regions share one listener (and one pool queue)."""

    transport_url: str
    topic: str
    exchange: str

    def __repr__(self) -> str:  # never the password, even in a traceback's locals
        return f"ListenerKey({mask_transport_url(self.transport_url)!r}, {self.topic!r}, " + (
            f"{self.exchange!r})"
        )

    def pool(self, prefix: str) -> str:
        """The listener's own queue: one per (prefix, bus). Two listeners on one queue would
        compete for its messages (each gets some), so topic, exchange and the broker address
        (without the password, which may rotate) are all in the name."""
        digest = hashlib.sha256(
            f"{mask_transport_url(self.transport_url)} {self.exchange}".encode()
        ).hexdigest()[:8]
        return f"{prefix}-{self.topic}-{digest}"

    @property
    def shown(self) -> str:
        return (
            f"{mask_transport_url(self.transport_url)} topic={self.topic} exchange={self.exchange}"
        )

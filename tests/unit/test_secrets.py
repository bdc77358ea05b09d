"""Secrets by schema: masking, URL passwords, and when a masked secret may be kept (issue 15)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from vesagent.config import masked
from vesagent.errors import ConfigError
from vesagent.secrets import (
    keep_masked_secrets,
    mask_url_password,
    masked_config,
    secret_fields,
    url_destinations,
    url_passwords,
)

ENDPOINT = "http://ves.example:8080/eventListener/v5"


class Notifications(BaseModel):
    """Shaped like the notifications block another branch adds."""

    transport_url: str = Field(json_schema_extra={"secret": "url"})
    topic: str = "vesagent_notifications"


class Sub(BaseModel):
    """A subscription whose secret key is not spelled like a password."""

    endpoint: str
    credential: str | None = Field(
        None, json_schema_extra={"secret": "value", "sent_to": "endpoint"}
    )


class Config(BaseModel):
    """A test schema with a secret value, a secret inside a URL and an array of secrets."""

    ves_subscription: Sub
    notifications: Notifications | None = None
    extra: tuple[Sub, ...] = ()


def test_the_ves_password_is_a_schema_marked_secret() -> None:
    """VesSubscription.password is found through the schema, with its destination."""
    fields = secret_fields()
    assert any(
        f.path == ("ves_subscription", "password") and f.sent_to == "endpoint" for f in fields
    )


def test_masking_follows_the_schema_not_the_key_name() -> None:
    """A secret field named ``credential`` and a transport URL's password are masked."""
    obj = {
        "ves_subscription": {"endpoint": ENDPOINT, "credential": "planted-1"},
        "notifications": {"transport_url": "rabbit://nova:planted-2@mq.example:5672/"},
        "extra": [{"endpoint": ENDPOINT, "credential": "planted-3"}],
    }
    shown = masked_config(obj, Config)
    text = repr(shown)
    assert "planted" not in text
    assert shown["notifications"]["transport_url"] == "rabbit://nova:***@mq.example:5672/"
    assert shown["extra"][0]["credential"] == "***"
    assert obj["ves_subscription"]["credential"] == "planted-1"  # the input is untouched


def test_url_password_helpers() -> None:
    """Multi-host oslo URLs: each host's password is found, masked and placed."""
    url = "rabbit://u1:p%40ss@h1:5672,u2:second@H2/vhost"
    assert url_passwords(url) == ["p%40ss", "second"]
    assert mask_url_password(url) == "rabbit://u1:***@h1:5672,u2:***@H2/vhost"
    assert url_destinations(url) == (("rabbit", "h1", 5672), ("rabbit", "h2", 5672))
    assert url_destinations("https://ves/x") == (("https", "ves", 443),)
    assert url_destinations("not a url") == ()
    assert mask_url_password("http://host:8080/path") == "http://host:8080/path"


def test_masked_secret_is_kept_only_while_its_destination_is_unchanged() -> None:
    """Finding 1: same scheme/host/port keeps the stored secret, anything else is refused."""
    stored = {
        "ves_subscription": {"endpoint": ENDPOINT, "credential": "planted-1"},
        "notifications": {"transport_url": "rabbit://nova:planted-2@mq.example:5672/"},
    }
    posted = masked_config(stored, Config)
    posted["ves_subscription"]["endpoint"] = "http://VES.example:8080/eventListener/v7"
    kept = keep_masked_secrets(posted, stored, Config)
    assert kept["ves_subscription"]["credential"] == "planted-1"
    assert kept["notifications"]["transport_url"] == "rabbit://nova:planted-2@mq.example:5672/"
    assert posted["ves_subscription"]["credential"] == "***"  # not changed in place

    for endpoint in (
        "http://attacker.example:8080/eventListener/v5",
        "https://ves.example:8080/eventListener/v5",
        "http://ves.example:8081/eventListener/v5",
    ):
        moved = masked_config(stored, Config)
        moved["ves_subscription"]["endpoint"] = endpoint
        with pytest.raises(ConfigError) as caught:
            keep_masked_secrets(moved, stored, Config)
        assert caught.value.problems[0][0] == "ves_subscription.credential"
        assert "give the secret" in caught.value.problems[0][1]

    moved_mq = masked_config(stored, Config)
    moved_mq["notifications"]["transport_url"] = "rabbit://nova:***@evil.example:5672/"
    with pytest.raises(ConfigError) as caught:
        keep_masked_secrets(moved_mq, stored, Config)
    assert caught.value.problems == [
        (
            "notifications.transport_url",
            "holds a masked password (***) but now points to another place (scheme, host or "
            "port changed): give the password itself to send it there",
        )
    ]


def test_masked_secret_with_nothing_stored_is_refused() -> None:
    """``***`` where no secret is stored would otherwise be saved as the password itself."""
    posted = {"ves_subscription": {"endpoint": ENDPOINT, "username": "u", "password": "***"}}
    with pytest.raises(ConfigError) as caught:
        keep_masked_secrets(posted, None)
    assert caught.value.problems[0][0] == "ves_subscription.password"
    new = {"ves_subscription": {"endpoint": ENDPOINT, "username": "u", "password": "new-one"}}
    assert keep_masked_secrets(new, None) == new


def test_config_masked_masks_the_real_schema() -> None:
    """config.masked (what the REST API shows) hides the VES password."""
    obj = {"ves_subscription": {"endpoint": ENDPOINT, "username": "u", "password": "planted"}}
    assert masked(obj)["ves_subscription"]["password"] == "***"

"""The one check of a region's identity before it goes anywhere near a URL.

A vimid is ``{cloud-owner}_{cloud-region-id}``. ONAP MultiCloud decodes it with
``^([0-9a-zA-Z-]+)_([0-9a-zA-Z_-]+)$`` (the owner has no underscore), so those are the only
characters vesagent accepts in either part. The rule is security, not taste: percent-encoding
leaves ``.`` and ``..`` alone, and HTTP clients then normalise the path, so a vimid such as
``.._..`` would make a request for one region reach the cloud-regions collection (or another
node) in A&AI. Every caller that turns a region into a URL (the REST API, the A&AI client)
asks this module first.
"""

from __future__ import annotations

import re

from vesagent.errors import Rejected
from vesagent.model import RegionKey

CLOUD_OWNER = re.compile(r"[0-9A-Za-z-]+")
"""A&AI/MultiCloud's characters of ``cloud-owner`` (no underscore: it separates the vimid)."""

CLOUD_REGION_ID = re.compile(r"[0-9A-Za-z_-]+")
"""A&AI/MultiCloud's characters of ``cloud-region-id``."""

MAX_PART_LENGTH = 255
"""Longer names are refused outright (A&AI keys are indexed strings; URLs stay bounded)."""

_SHOW = 80


class InvalidVimid(Rejected):
    """A vimid (or a cloud-owner / cloud-region-id) outside A&AI's rules; nothing was sent."""


def _shown(text: str) -> str:
    cut = text if len(text) <= _SHOW else text[: _SHOW - 1] + "…"
    return ascii(cut)


def check_region_key(key: RegionKey) -> RegionKey:
    """``key`` itself when both parts follow A&AI's rules; raises :class:`InvalidVimid`."""
    owner, region = key.cloud_owner, key.cloud_region_id
    if (
        not isinstance(owner, str)
        or not CLOUD_OWNER.fullmatch(owner)
        or len(owner) > MAX_PART_LENGTH
    ):
        raise InvalidVimid(
            f"cloud-owner {_shown(str(owner))} is not valid: use 1 to {MAX_PART_LENGTH} "
            "letters, digits or '-'"
        )
    if (
        not isinstance(region, str)
        or not CLOUD_REGION_ID.fullmatch(region)
        or len(region) > MAX_PART_LENGTH
    ):
        raise InvalidVimid(
            f"cloud-region-id {_shown(str(region))} is not valid: use 1 to {MAX_PART_LENGTH} "
            "letters, digits, '-' or '_'"
        )
    return key


def parse_vimid(vimid: str) -> RegionKey:
    """``{cloud-owner}_{cloud-region-id}`` as a checked RegionKey; raises :class:`InvalidVimid`.

    The owner ends at the first underscore (MultiCloud's rule), the region id may hold more.
    """
    owner, sep, region = vimid.partition("_")
    if not sep:
        raise InvalidVimid(
            f"{_shown(vimid)} is not a vimid: expected {{cloud-owner}}_{{cloud-region-id}}"
        )
    return check_region_key(RegionKey(owner, region))

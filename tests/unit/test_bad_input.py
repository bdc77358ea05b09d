"""Arbitrary Nova bodies through parsing, deciding and encoding: nothing raises, all validates."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vesagent import ves_schema
from vesagent.pollers.decide import FaultContext, ServerView, decide_vm
from vesagent.ves_client.encode import dumps, encode

STATUSES = ["ACTIVE", "ERROR", "SHUTOFF", "PAUSED", "DELETED", "UNKNOWN", "BUILD", "weird", ""]
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=300)
)
values = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=10), c, max_size=3),
    max_leaves=8,
)
server_bodies = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(min_size=1, max_size=80), scalars),
        "name": st.one_of(st.text(max_size=5000), scalars),
        "status": st.one_of(st.sampled_from(STATUSES), scalars),
        "tenant_id": values,
        "updated": st.one_of(
            st.sampled_from(["2026-11-25T12:30:50Z", "2026-11-25T12:30:50", "garbage"]), values
        ),
        "OS-EXT-SRV-ATTR:host": values,
        "fault": st.one_of(
            st.fixed_dictionaries({}, optional={"code": values, "message": values}), values
        ),
        "extra": values,
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=server_bodies, second=server_bodies, version=st.sampled_from(["v5", "v7"]))
def test_any_server_body_gives_valid_events(first, second, version) -> None:
    """Two successive bodies for a server: decisions never raise, events always validate."""
    ctx = FaultContext(vimid="Owner_Region", reporter="vesagent", now_us=1_800_000_000_000_000)
    prev = None
    for body in (first, second, None):
        view = ServerView.from_nova(body) if body is not None else None
        if body is not None and view is None:
            continue
        transition = decide_vm(prev, view, ctx)
        for event in transition.events:
            encoded = encode(event, version)
            assert ves_schema.errors({"event": encoded}, version) == []
            assert len(dumps(encoded)) < 64 * 1024
        if transition.upsert is not None:
            prev = transition.upsert
        elif transition.delete is not None:
            prev = None

"""A short soak of the PostgreSQL mode (``make bench`` runs the 10-round one).

Three ``vesagent run`` replicas on a private PostgreSQL; each round flips a third of the VMs,
sometimes takes the collector away (503 or refused connections), ``kill -9``s a random replica
and starts a new one. Then the collector's events are judged against the VMs' final states.
"""

from __future__ import annotations

import pytest

from tests.pg import find_bin_dir
from vesagent.bench.postgres import run_soak


@pytest.mark.timeout(240)
def test_kill_9_and_collector_outages_lose_no_clear_and_raise_nothing_twice() -> None:
    """3 rounds of kill -9/restart with faults coming and going and collector outages: 0 lost
    clears, 0 raises delivered twice, 0 lost events, every VM's final state right."""
    if find_bin_dir() is None:
        pytest.skip("no PostgreSQL server installed (apt-get install postgresql)")
    result = run_soak(rounds=3, regions=4, vms=3, ttl=3.0, seed=19)
    print(result)
    assert result.kills == 3 and result.flips >= 3 and result.events > 0
    assert result.lost_clears == 0
    assert result.duplicate_raises == 0
    assert result.lost_events == 0
    assert result.wrong_final == 0

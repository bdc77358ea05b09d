"""The named retry policies: how long to wait before the next attempt, and how often to try.

Retry happens in one layer only: A&AI reads retry here (``aai_read``, bounded), VES delivery
retries in the sender (for as long as the outbox holds the event, with ``wait_honouring``),
Keystone/Nova calls are not retried by vesagent (keystoneauth re-authenticates once on a 401;
the next poll is the retry). Both waits honour a server's ``Retry-After``
(``TemporaryError.delay``): never less than it asks, never more than ``RETRY_AFTER_MAX``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from vesagent.errors import TemporaryError

#: The longest ``Retry-After`` honoured (seconds): a server asking for an hour is capped.
RETRY_AFTER_MAX = 300.0


def server_delay(retry_state: RetryCallState, cap: float = RETRY_AFTER_MAX) -> float:
    """The ``Retry-After`` of the last attempt's error (0 when none), capped at ``cap``."""
    outcome = retry_state.outcome
    error = outcome.exception() if outcome is not None and outcome.failed else None
    delay = getattr(error, "delay", None)
    if not isinstance(delay, int | float) or delay <= 0:
        return 0.0
    return min(float(delay), cap)


class wait_honouring(wait_base):  # named like tenacity's own waits
    """``base``'s wait, but at least the server's ``Retry-After`` (bounded by ``cap``)."""

    def __init__(self, base: wait_base, cap: float = RETRY_AFTER_MAX) -> None:
        self.base = base
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        return max(self.base(retry_state), server_delay(retry_state, self.cap))


def aai_read(
    attempts: int = 3,
    max_delay: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    retry_after_max: float = 30.0,
) -> Retrying:
    """A&AI reads: a few quick, jittered attempts, each at least ``Retry-After`` apart.

    The next sync pass is the real retry, so a server asking for more than
    ``retry_after_max`` seconds is waited for only that long.
    """
    return Retrying(
        retry=retry_if_exception_type(TemporaryError),
        wait=wait_honouring(
            wait_exponential_jitter(multiplier=0.2, max=2.0, jitter=0.2), cap=retry_after_max
        ),
        stop=stop_after_attempt(attempts) | stop_after_delay(max_delay),
        sleep=sleep,
        reraise=True,
    )

"""The named retry policies; the only module that builds ``tenacity.Retrying`` for reads.

Retry happens in one layer only: A&AI reads retry here (bounded), VES delivery retries in the
sender (unbounded while the outbox holds the event), Nova polls do not retry at all (the next
poll is the retry).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from vesagent.errors import TemporaryError


def aai_read(
    attempts: int = 3, max_delay: float = 10.0, sleep: Callable[[float], None] = time.sleep
) -> Retrying:
    """A&AI reads: a few quick, jittered attempts; the next sync pass is the real retry."""
    return Retrying(
        retry=retry_if_exception_type(TemporaryError),
        wait=wait_exponential_jitter(multiplier=0.2, max=2.0, jitter=0.2),
        stop=stop_after_attempt(attempts) | stop_after_delay(max_delay),
        sleep=sleep,
        reraise=True,
    )

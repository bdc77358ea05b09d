"""The shard of a StatefulSet replica, derived from what Kubernetes tells the pod.

Kubernetes gives a StatefulSet pod its ordinal (the ``apps.kubernetes.io/pod-index`` label since
1.28, and always the ``-N`` suffix of the pod name) but not the replica count, so the manifest
in ``deploy/kubernetes`` passes three variables:

- ``VESAGENT_POD_INDEX``: the pod-index label through the downward API (empty before 1.28);
- ``VESAGENT_POD_NAME``: ``metadata.name`` through the downward API, the fallback;
- ``VESAGENT_REPLICAS``: a literal that must equal the StatefulSet's ``spec.replicas``.

Convention: when ``VESAGENT_SHARD`` is unset (or empty) and ``VESAGENT_REPLICAS`` plus an index
(``VESAGENT_POD_INDEX`` or ``VESAGENT_POD_NAME``) are set, the shard is ``index/replicas``. An
explicit ``VESAGENT_SHARD`` always wins.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

SHARD_ENV = "VESAGENT_SHARD"
POD_INDEX_ENV = "VESAGENT_POD_INDEX"
POD_NAME_ENV = "VESAGENT_POD_NAME"
REPLICAS_ENV = "VESAGENT_REPLICAS"

# A StatefulSet pod is named {statefulset}-{ordinal}; the statefulset name may hold dashes.
_ORDINAL_SUFFIX = re.compile(r"-(\d+)$")


class ShardEnvironmentError(ValueError):
    """The pod's variables are present but inconsistent; the message names them."""


def _decimal(text: str, name: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise ShardEnvironmentError(f"{name}={text!r} is not a non-negative integer")
    return int(text)


def pod_index(env: Mapping[str, str]) -> int | None:
    """The StatefulSet ordinal: the pod-index label, else the pod name's ``-N`` suffix."""
    label = env.get(POD_INDEX_ENV, "").strip()
    if label:
        return _decimal(label, POD_INDEX_ENV)
    name = env.get(POD_NAME_ENV, "").strip()
    if not name:
        return None
    match = _ORDINAL_SUFFIX.search(name)
    if match is None:
        raise ShardEnvironmentError(
            f"{POD_NAME_ENV}={name!r} does not end in -N (a StatefulSet pod ordinal)"
        )
    return int(match.group(1))


def shard_from_environment(env: Mapping[str, str]) -> str | None:
    """``"index/replicas"`` per the module's convention, or None when it does not apply.

    None when ``VESAGENT_SHARD`` is set (it wins) or when ``VESAGENT_REPLICAS`` or both index
    variables are absent. Raises ``ShardEnvironmentError`` when the variables are present but
    unusable, notably an index >= replicas: that pod was started by a ``kubectl scale`` that
    did not also change ``VESAGENT_REPLICAS``, and running it would let two replicas own the
    same regions, so refusing to start is the safe outcome.
    """
    if env.get(SHARD_ENV, "").strip():
        return None
    replicas_text = env.get(REPLICAS_ENV, "").strip()
    has_index = bool(env.get(POD_INDEX_ENV, "").strip() or env.get(POD_NAME_ENV, "").strip())
    if not replicas_text or not has_index:
        return None
    replicas = _decimal(replicas_text, REPLICAS_ENV)
    if replicas < 1:
        raise ShardEnvironmentError(f"{REPLICAS_ENV}={replicas_text!r} must be at least 1")
    index = pod_index(env)
    if index is None:  # unreachable: has_index was checked; keeps the type checker honest
        return None
    if index >= replicas:
        raise ShardEnvironmentError(
            f"pod ordinal {index} is not below {REPLICAS_ENV}={replicas}: set {REPLICAS_ENV} to "
            "the StatefulSet's spec.replicas (see deploy/kubernetes/README.md)"
        )
    return f"{index}/{replicas}"

"""The baseline poller: the ONAP MultiCloud fcaps agent's way, rebuilt with plain ``requests``.

What the seed agent does each poll (onap/multicloud-openstack,
fcaps/fcaps/vesagent/event_domain/fault_vm.py ``processBacklog_fault_vm``): get a token, then
``GET /servers/{id}`` for the backlog's VM, and raise on any status outside BUILD, ACTIVE,
HARD_REBOOT, REBOOT, MIGRATING and PASSWORD. With one backlog per VM that is one Nova request
per VM per poll. The seed authenticates once per *backlog*; this baseline authenticates once per
*poll*, which is kinder to it (a lower bound of its Keystone load). It also reuses one HTTP
connection (the seed opened one per call).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

# The seed's healthy statuses (fault_vm.py ``vm_status_is_fault``); anything else raises.
SEED_HEALTHY = frozenset({"BUILD", "ACTIVE", "HARD_REBOOT", "REBOOT", "MIGRATING", "PASSWORD"})


@dataclass
class SweepResult:
    """One baseline poll: requests by service, faults raised/cleared, time and CPU spent."""

    keystone_requests: int = 0
    nova_requests: int = 0
    raised: int = 0
    cleared: int = 0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0


def compute_endpoint(catalog: Sequence[Any], region: str, interface: str = "public") -> str:
    """The compute URL of ``region`` in a Keystone v3 catalog; KeyError when absent."""
    for service in catalog:
        if not isinstance(service, dict) or service.get("type") != "compute":
            continue
        for endpoint in service.get("endpoints") or []:
            if endpoint.get("region_id", endpoint.get("region")) == region and (
                endpoint.get("interface") == interface
            ):
                return str(endpoint["url"]).rstrip("/")
    raise KeyError(f"no {interface} compute endpoint for region {region!r}")


@dataclass
class PerVmPoller:
    """A per-VM poller of the seed agent's kind: a token, then one GET per watched VM."""

    keystone_url: str
    username: str
    password: str = field(repr=False)
    project: str
    region: str
    server_ids: Sequence[str]
    timeout: float = 10.0
    raised: set[str] = field(default_factory=set)
    _session: requests.Session = field(default_factory=requests.Session, repr=False)

    def authenticate(self) -> tuple[str, str]:
        """A fresh project-scoped token and this region's compute URL (one Keystone call)."""
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": self.username,
                            "domain": {"name": "Default"},
                            "password": self.password,
                        }
                    },
                },
                "scope": {"project": {"name": self.project, "domain": {"name": "Default"}}},
            }
        }
        resp = self._session.post(
            f"{self.keystone_url.rstrip('/')}/auth/tokens", json=body, timeout=self.timeout
        )
        resp.raise_for_status()
        catalog = resp.json()["token"].get("catalog") or []
        return resp.headers["X-Subject-Token"], compute_endpoint(catalog, self.region)

    def poll(self) -> SweepResult:
        """One poll of every VM; raises/clears are counted, not sent (they are not measured)."""
        result = SweepResult()
        started, cpu = time.perf_counter(), time.thread_time()
        token, compute = self.authenticate()
        result.keystone_requests = 1
        headers = {"X-Auth-Token": token, "Accept": "application/json"}
        for server_id in self.server_ids:
            resp = self._session.get(
                f"{compute}/servers/{server_id}", headers=headers, timeout=self.timeout
            )
            result.nova_requests += 1
            if resp.status_code == 404:
                faulty = False
            else:
                resp.raise_for_status()
                faulty = json.loads(resp.content)["server"]["status"] not in SEED_HEALTHY
            if faulty and server_id not in self.raised:
                self.raised.add(server_id)
                result.raised += 1
            elif not faulty and server_id in self.raised:
                self.raised.discard(server_id)
                result.cleared += 1
        result.wall_seconds = time.perf_counter() - started
        result.cpu_seconds = time.thread_time() - cpu
        return result

    def close(self) -> None:
        """Close the pooled connection."""
        self._session.close()

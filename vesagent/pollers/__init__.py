"""Pollers: per-region jobs that read a cloud through a ``ports.ComputeApi`` (the agent's is
``openstack.ComputeClient``) and turn what they see into VES events.

Reading order for one VM fault: ``poller.RegionPoller.poll`` (fetch) -> ``cycle.decide_poll``
(pure decision; ``decide.decide_vm`` for the fault itself) -> ``vesagent.enqueue.enqueue``
(outbox commit). ``servers.ServerCache`` keeps the server list and the watermark,
``periodic`` the heartbeats and measurements, ``manager.PollerSet`` the timers.
"""

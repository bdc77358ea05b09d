"""The reconcile loop: A&AI (desired) -> backlog cache -> pollers (actual).

``diff`` is the pure decision; ``loop.Reconciler`` does the reading and converging.
"""

"""Loopback simulators of A&AI, OpenStack (Keystone v3 + Nova v2.1) and the DCAE VES collector.

Each is a real HTTP server on 127.0.0.1 built on ``SimServer`` (``base.py``), with a control
API under ``/_sim/...`` and a Python handle for tests. They follow ``reference/*/FACTS.md`` of
the project's research; where they and the real APIs disagree, the real API wins.
"""

"""Opt-in integration tests against a real OpenStack (``make itest-openstack``)."""

"""Pollers: per-region loops that read Nova through ``openstack.ComputeClient`` and turn what
they see into VES events (``decide`` holds the pure alarm logic)."""

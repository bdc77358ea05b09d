"""vesagent: watches OpenStack clouds registered in ONAP A&AI and reports VES events.

A&AI is the source of truth: each cloud-region's ``cloud-extra-info`` may carry a
``vesagent_config``; the reconciler turns that into running pollers, the pollers turn what
Nova says into VES events, and the VES client delivers them to DCAE's collector.
"""

__version__ = "0.1.0"
AGENT_NAME = "vesagent"

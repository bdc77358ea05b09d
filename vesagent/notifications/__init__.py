"""Nova's versioned notifications as doorbells for the fault poll (issue 19).

- ``settings``: the ``vesagent_config.notifications`` model and the URL password mask;
- ``events``: what a notification means (pure);
- ``listener``: one oslo.messaging notification listener and its health;
- ``hub``: one listener per distinct bus, the regions on it, their doorbells and status;
- ``metrics``: ``vesagent_notifications_*``.
"""

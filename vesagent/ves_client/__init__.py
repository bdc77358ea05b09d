"""The VES client: pure encoding of events into v5/v7 JSON (``encode``) and their delivery."""

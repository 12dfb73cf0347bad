"""Temporal workflows: the durable state machines of cases (no I/O here)."""

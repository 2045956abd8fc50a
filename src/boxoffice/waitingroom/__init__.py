"""The waiting room: a fair, visible, auditable line in front of a queued sale."""

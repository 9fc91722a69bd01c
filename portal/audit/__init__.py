"""The append-only audit log of every state and money change."""

"""Sign-in, sessions, roles and per-view access policies."""

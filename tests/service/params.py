"""Isolation-test parameters of the service area (see tests/isolation_params.py)."""
PARAMS: dict = {}

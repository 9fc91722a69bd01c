"""Isolation-test parameters of the certification area (see tests/isolation_params.py)."""
PARAMS: dict = {}

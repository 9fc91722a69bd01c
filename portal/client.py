"""Who is on the other end of the request."""
from flask import request


def client_address() -> str:
    # Behind a reverse proxy, ProxyFix (enabled by PORTAL_PROXY_HOPS) rewrites remote_addr.
    return request.remote_addr or "unknown"

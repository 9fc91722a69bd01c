"""The server the benchmark loads: the portal, wrapped so that two bare routes exist beside
it without being part of the product.

``/__bench/wsgi-hello`` answers before the portal sees the request (the floor of the server
itself); ``/__bench/hello`` is a route added to this process's app only, answering through
Flask's whole request cycle (sessions, security headers, access policy) without a query.
"""
from portal import create_app
from portal.auth.access import public

app = create_app()


@public
def _hello():
    return "hello"


app.add_url_rule("/__bench/hello", "bench_hello", _hello)
_BODY = [b"hello"]


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/__bench/wsgi-hello":
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return _BODY
    return app(environ, start_response)

"""Load on loopback: the portal under gunicorn, signed-in sessions, and wrk driving one URL
at a time (latency percentiles from wrk's own histogram, via bench/wrk.lua)."""
import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from http.cookiejar import CookieJar
from pathlib import Path

from bench.databases import PROJECT, Database

LUA = Path(__file__).resolve().parent / "wrk.lua"
# Flask-Login's strong session protection ties a session to the browser that signed in: wrk
# must present the same User-Agent as the sign-in did, or every request is sent to sign in.
AGENT = "portal-bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(database: Database, workers: int):
    """The portal (bench/hello.py's wrapper) under gunicorn; yields its base URL."""
    with serve(["--workers", str(workers), "--timeout", "120", "bench.hello:application"],
               database.env(), database.instance / "gunicorn.log") as base:
        yield base


@contextmanager
def serve(arguments: list[str], env: dict, log_path):
    """gunicorn with `arguments` on a free loopback port; yields its base URL, stops it after."""
    port = free_port()
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(  # noqa: S603 - gunicorn of this project
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", *arguments],
        cwd=PROJECT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, process)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


def _wait_until_up(base: str, process) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn stopped; see gunicorn.log in the work directory")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=5):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("gunicorn did not answer within a minute")


class Session:
    """A signed-in browser: the cookie header wrk sends, and plain GETs for checks."""

    def __init__(self, base: str, email: str, password: str):
        self.base, self.jar = base, CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar),
                                                  _NoRedirects)
        self.opener.addheaders = [("User-Agent", AGENT)]
        page = self.opener.open(base + "/auth/sign-in").read().decode()
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        form = {"email": email, "password": password}
        if token:
            form["csrf_token"] = html.unescape(token.group(1))
        try:
            self.opener.open(base + "/auth/sign-in", urllib.parse.urlencode(form).encode())
        except urllib.error.HTTPError as answer:  # 302: signed in
            if answer.code != 302 or "sign-in" in (answer.headers.get("Location") or ""):
                raise RuntimeError(f"could not sign in as {email}: {answer.code}") from None
        else:
            raise RuntimeError(f"could not sign in as {email}: the form came back")

    @property
    def cookie(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    def get(self, path: str) -> tuple[int, int]:
        """(status, bytes) of one GET, as wrk will send it (a redirect is not followed)."""
        request = urllib.request.Request(  # noqa: S310 - loopback http only
            self.base + path, headers={"Cookie": self.cookie, "User-Agent": AGENT})
        opener = urllib.request.build_opener(_NoRedirects)
        try:
            with opener.open(request, timeout=120) as response:
                return response.status, len(response.read())
        except urllib.error.HTTPError as error:
            return error.code, 0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def wrk(url: str, cookie: str | None, seconds: int, connections: int) -> dict:
    """p50/p95/p99 latency (ms) and throughput (requests/s) of `url` under wrk."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is missing: apt-get install wrk (make bench installs it)")
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s",
               "-H", f"User-Agent: {AGENT}", "-s", str(LUA), url]
    if cookie:
        command[1:1] = ["-H", f"Cookie: {cookie}"]
    done = subprocess.run(command, capture_output=True, text=True,  # noqa: S603 - wrk
                          check=True)
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("BENCH "))
    raw = json.loads(line[len("BENCH "):])
    if raw["not_200"] or (raw["errors"] and raw["requests"]):
        raise RuntimeError(f"{url}: {raw['not_200']} answers other than 200, "
                           f"{raw['errors']} errors under load")
    seconds_run = raw["duration_us"] / 1e6
    if not raw["requests"]:  # not one answer within the run: the caller times one alone
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "mean_ms": None,
                "requests": 0, "rps": 0.0, "errors": raw["errors"], "not_200": 0}
    return {"p50_ms": raw["p50"] / 1000, "p95_ms": raw["p95"] / 1000,
            "p99_ms": raw["p99"] / 1000, "mean_ms": round(raw["mean"] / 1000, 2),
            "requests": raw["requests"], "rps": round(raw["requests"] / seconds_run, 1),
            "errors": raw["errors"], "not_200": raw["not_200"]}

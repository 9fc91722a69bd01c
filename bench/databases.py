"""One database per network size: created, migrated and filled with a synthetic network by the
portal's own commands (`db upgrade heads`, `synth-network`), as an operator would.

SQLite: a file per size under the work directory. PostgreSQL (``DATABASE_URL`` naming a role
that may create databases): a database per size, migrated by that role as the owner, and the
application connecting as the plain role ``portal_app`` so that row-level security binds it.
"""
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

PROJECT = Path(__file__).resolve().parent.parent
APP_ROLE = "portal_app"


@dataclass(frozen=True)
class Network:
    agencies: int
    orders: int
    engineers: int
    quarters: int
    seed: int

    @property
    def label(self) -> str:
        return f"{self.agencies} agencies / {self.orders:,} orders"


@dataclass
class Database:
    kind: str  # "sqlite" or "postgresql"
    app_url: str  # what the portal connects with
    owner_url: str | None  # migrations and ANALYZE (PostgreSQL)
    instance: Path

    def env(self) -> dict:
        env = {**os.environ, "DATABASE_URL": self.app_url, "PORTAL_INSTANCE_PATH":
               str(self.instance), "SECRET_KEY": "bench-secret-key",
               "PYTHONPATH": str(PROJECT)}
        env.pop("MIGRATION_DATABASE_URL", None)
        if self.owner_url:
            env["MIGRATION_DATABASE_URL"] = self.owner_url
        env.pop("REDIS_URL", None)
        return env


def flask(database: Database, *args, owner: bool = False, echo: bool = True,
          partial: str | None = None) -> str:
    """Run a portal command against `database` (as the owner for migrations). A failure is an
    error, unless its output holds `partial` (the command did its main work)."""
    env = database.env()
    if owner and database.owner_url:
        env["DATABASE_URL"] = database.owner_url
    done = subprocess.run(  # noqa: S603 - the portal's own commands
        [sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=PROJECT, env=env,
        capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    if done.returncode != 0 and not (partial and partial in done.stdout):
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{output[-3000:]}")
    if echo:
        for line in done.stdout.splitlines():
            if line.strip() and not line.startswith("INFO"):
                print(f"    {line}", flush=True)
    return done.stdout


def prepare(network: Network, work: Path, reuse: bool) -> tuple[Database, dict]:
    """The database of `network`, built unless `reuse` finds it already built; returns it
    with the synthetic build's timings."""
    admin = os.environ.get("DATABASE_URL")
    name = f"bench_{network.agencies}_{network.orders}_{network.seed}"
    instance = work / f"{'postgresql' if admin else 'sqlite'}-{name}"
    instance.mkdir(parents=True, exist_ok=True)
    marker = instance / "built.json"
    if admin:
        database = _postgresql(admin, name, instance, fresh=not (reuse and marker.exists()))
    else:
        path = instance / "portal.sqlite3"
        if not (reuse and marker.exists()):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        database = Database("sqlite", f"sqlite:///{path}", None, instance)
    if reuse and marker.exists():
        print(f"  reusing {network.label} ({database.kind})", flush=True)
        return database, json.loads(marker.read_text())
    print(f"  building {network.label} ({database.kind})", flush=True)
    flask(database, "db", "upgrade", "heads", owner=True, echo=False)
    if database.kind == "postgresql":
        flask(database, "grant-app-role", APP_ROLE, owner=True, echo=False)
    started = time.monotonic()
    output = flask(database, "synth-network", "--agencies", str(network.agencies), "--orders",
                   str(network.orders), "--engineers", str(network.engineers), "--quarters",
                   str(network.quarters), "--seed", str(network.seed), partial=" rows in ")
    built = {"seconds": round(time.monotonic() - started, 1), "steps": _steps(output),
             "failed_jobs": _failed(database)}
    marker.write_text(json.dumps(built))
    return database, built


def _steps(output: str) -> dict:
    """The per-step timings `synth-network` prints ("  service   56.42 s")."""
    steps = {}
    for line in output.splitlines():
        found = re.match(r"\s+(\S.*?)\s+(\d+\.\d+) s$", line)
        if found:
            steps[found.group(1)] = float(found.group(2))
        rows = re.match(r"([\d,]+) rows in", line)
        if rows:
            steps["rows"] = int(rows.group(1).replace(",", ""))
    return steps


def _failed(database: Database) -> list[str]:
    """The synthetic build's jobs that failed, with their error (they are the product's)."""
    engine = create_engine(database.owner_url or database.app_url)
    try:
        with engine.connect() as conn:
            if database.kind == "postgresql":
                conn.execute(text("SELECT set_config('portal.scope', 'all', false)"))
            return [f"{kind} {params}: {(error or '').splitlines()[0][:300]}"
                    for kind, params, error in conn.execute(text(
                        "SELECT kind, params, error FROM jobs WHERE status = 'failed' "
                        "ORDER BY id"))]
    finally:
        engine.dispose()


def _postgresql(admin_url: str, name: str, instance: Path, fresh: bool) -> Database:
    from portal.config import normalize_database_url

    admin = make_url(normalize_database_url(admin_url))
    server = create_engine(admin, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        if fresh:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        conn.execute(text(f"""DO $$ BEGIN
            CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"""))
    server.dispose()
    owner = admin.set(database=name)
    app = owner.set(username=APP_ROLE, password=None)
    return Database("postgresql", app.render_as_string(hide_password=False),
                    owner.render_as_string(hide_password=False), instance)


def server_version(database: Database) -> str:
    engine = create_engine(database.app_url)
    try:
        with engine.connect() as conn:
            if database.kind == "postgresql":
                return conn.execute(text("SHOW server_version")).scalar()
            return "SQLite " + conn.execute(text("SELECT sqlite_version()")).scalar()
    finally:
        engine.dispose()

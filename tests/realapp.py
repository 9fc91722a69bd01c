"""A portal as production runs it, with its own database: for tests that replace a database
(backups), need a pool of their own (connection reuse) or real sessions (expire on commit).

The shared `app` fixture runs every test inside one rolled-back transaction with a session
that never expires objects; these tests need the real thing instead.
"""
import os
import uuid
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, make_url, select, text

from portal import backup, create_app
from portal.config import normalize_database_url
from portal.extensions import db
from portal.tenancy import unscoped
from tests.conftest import APP_ROLE

POSTGRES = os.environ.get("DATABASE_URL", "").startswith("postgres")
SETTINGS = {"TESTING": True, "WTF_CSRF_ENABLED": False, "SECRET_KEY": "backup-test",
            "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_COST": 1024, "ARGON2_PARALLELISM": 1,
            "RATELIMIT_STORAGE_URI": "memory://", "SERVER_NAME": "portal.test",
            "BABEL_DEFAULT_LOCALE": "en", "JOBS_RUN_INLINE": True, "HOME_FIGURES_SECONDS": 0}


@contextmanager
def scratch_database(folder: Path, label: str):
    """The URL of an empty database of a test's own, which other processes can see, dropped
    afterwards: a SQLite file in `folder`, or with DATABASE_URL a PostgreSQL database named
    after `label` (the URL of its owner; the plain application role exists)."""
    if not POSTGRES:
        yield f"sqlite:///{folder / f'{label}.sqlite3'}"
        return
    url = make_url(normalize_database_url(os.environ["DATABASE_URL"]))
    name = f"{url.database}_{label}_{os.getpid()}"
    server = create_engine(url, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
        conn.execute(text(f"""DO $$ BEGIN
            CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"""))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


class Site:
    """One portal with its own database and upload folder."""

    def __init__(self, folder: Path, *, migrate: bool, **settings):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.databases: list[str] = []
        overrides = {**SETTINGS, "UPLOAD_ROOT": str(folder / "files"), **settings}
        if settings.get("REDIS_URL") and "RATELIMIT_STORAGE_URI" not in settings:
            del overrides["RATELIMIT_STORAGE_URI"]  # the portal's own choice: Redis
        if POSTGRES:
            owner, app_url = self._postgres_database()
            overrides.update(SQLALCHEMY_DATABASE_URI=app_url, MIGRATION_DATABASE_URL=owner)
        else:
            overrides["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + str(folder / "portal.sqlite3")
        previous = os.environ.get("PORTAL_INSTANCE_PATH")
        os.environ["PORTAL_INSTANCE_PATH"] = str(folder)
        try:
            self.app = create_app(overrides)
        finally:
            if previous is not None:
                os.environ["PORTAL_INSTANCE_PATH"] = previous
        if migrate:
            with self.app.app_context():
                from flask_migrate import upgrade

                upgrade(directory=self.app.extensions["migrate"].directory, revision="heads")
                if POSTGRES:
                    from portal.dbsecurity import grant_app_role

                    engine = create_engine(overrides["MIGRATION_DATABASE_URL"])
                    with engine.begin() as conn:
                        grant_app_role(conn, APP_ROLE)
                    engine.dispose()

    def _postgres_database(self) -> tuple[str, str]:
        admin = make_url(normalize_database_url(os.environ["DATABASE_URL"]))
        name = f"{admin.database}_backup_{uuid.uuid4().hex[:10]}"
        server = create_engine(admin, isolation_level="AUTOCOMMIT")
        with server.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        server.dispose()
        self.databases.append(name)
        owner = admin.set(database=name)
        return (owner.render_as_string(hide_password=False),
                owner.set(username=APP_ROLE, password=None).render_as_string(
                    hide_password=False))

    def cli(self, *args):
        return self.app.test_cli_runner().invoke(args=list(args))

    def counts(self) -> dict:
        with self.app.app_context():
            engine = backup._owner_engine()
            try:
                return backup.row_counts(engine)
            finally:
                if engine is not db.engine:
                    engine.dispose()

    def hashes(self) -> dict:
        with self.app.app_context():
            engine = backup._owner_engine()
            try:
                return backup.stored_report_hashes(engine)
            finally:
                if engine is not db.engine:
                    engine.dispose()

    def files(self) -> dict:
        return backup._file_hashes(self.folder / "files")

    def close(self):
        with self.app.app_context():
            db.session.remove()
            db.engine.dispose()
        if self.databases:
            server = create_engine(normalize_database_url(os.environ["DATABASE_URL"]),
                                   isolation_level="AUTOCOMMIT")
            with server.connect() as conn:
                for name in self.databases:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            server.dispose()


def session_client(app, user_id: int):
    """A test client signed in as the user by its session cookie (as after a sign-in)."""
    from portal.auth.models import User

    with app.app_context(), unscoped("read the account's session id"):
        user = db.session.scalars(select(User).where(User.id == user_id)).one()
        session_id = user.get_id()
    client = app.test_client()
    from flask_login.utils import _create_identifier

    with app.test_request_context(environ_base=client.environ_base):
        identifier = _create_identifier()  # "strong" session protection checks it
    with client.session_transaction() as session:
        session.update({"_user_id": session_id, "_fresh": True, "_id": identifier})
    return client

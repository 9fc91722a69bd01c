"""Backups: the database and the stored files in one archive, and their restore.

`flask --app wsgi backup PATH` writes a gzipped tar archive holding `manifest.json` (row
counts of every table, SHA-256 of every stored report and file), the database (SQLite through
its online backup API, PostgreSQL through `pg_dump --format=custom` as the schema owner) and
the files under UPLOAD_ROOT (evidence uploads). `restore PATH` puts them back, refuses a
database that already holds rows unless `--force`, and checks the result against the
manifest.
"""
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess  # noqa: S404 - pg_dump and pg_restore, with argument lists
import tarfile
import tempfile
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import LargeBinary, create_engine, inspect, make_url, text
from sqlalchemy.engine import Engine

from portal import clock
from portal.config import normalize_database_url
from portal.extensions import db
from portal.tenancy import unscoped

FORMAT = 1
MANIFEST = "manifest.json"
SQLITE_MEMBER = "database.sqlite3"
POSTGRES_MEMBER = "database.pgdump"
FILES_PREFIX = "files/"
# Rows a freshly migrated database already holds: it still counts as empty.
SCHEMA_TABLES = {"alembic_version"}


class BackupError(click.ClickException):
    pass


def init_app(app) -> None:
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)


# --- where things are ------------------------------------------------------------------------


def _owner_engine() -> Engine:
    """The schema owner on PostgreSQL (MIGRATION_DATABASE_URL), the app's engine on SQLite."""
    url = current_app.config.get("MIGRATION_DATABASE_URL")
    if db.engine.dialect.name == "postgresql" and url:
        return create_engine(normalize_database_url(url))
    return db.engine


def _sqlite_path(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def _libpq_url(engine: Engine) -> str:
    """The owner's URL as pg_dump and pg_restore read it (no SQLAlchemy driver name)."""
    url = make_url(engine.url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def _pg_env() -> dict:
    # Row-level security is forced on the owner too: read and write in the 'all' scope.
    return {**os.environ, "PGOPTIONS": "-c portal.scope=all"}


def _upload_root() -> Path:
    return Path(current_app.config["UPLOAD_ROOT"])


# --- what a database holds -------------------------------------------------------------------


def _all_scope(connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT set_config('portal.scope', 'all', true)"))


def row_counts(engine: Engine) -> dict[str, int]:
    """Rows of every table, read past the tenant walls."""
    counts = {}
    with engine.connect() as connection, connection.begin():
        _all_scope(connection)
        for table in sorted(inspect(connection).get_table_names()):
            counts[table] = connection.execute(
                text(f'SELECT count(*) FROM "{table}"')).scalar_one()  # noqa: S608 - schema names
    return counts


def stored_report_hashes(engine: Engine) -> dict[str, dict[str, str]]:
    """SHA-256 of every stored binary (report PDFs), per table and row id."""
    hashes: dict[str, dict[str, str]] = {}
    with engine.connect() as connection, connection.begin():
        _all_scope(connection)
        present = set(inspect(connection).get_table_names())
        for table in db.metadata.sorted_tables:
            binary = [c.name for c in table.columns if isinstance(c.type, LargeBinary)]
            if table.name not in present or not binary or "id" not in table.columns:
                continue
            for column in binary:
                rows = connection.execute(text(
                    f'SELECT id, "{column}" FROM "{table.name}" ORDER BY id'))  # noqa: S608
                hashes[f"{table.name}.{column}"] = {
                    str(row_id): hashlib.sha256(bytes(content or b"")).hexdigest()
                    for row_id, content in rows}
    return hashes


def _is_empty(counts: dict[str, int]) -> bool:
    return not any(n for table, n in counts.items() if table not in SCHEMA_TABLES)


def _file_hashes(root: Path) -> dict[str, str]:
    if not root.is_dir():
        return {}
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


# --- backup ----------------------------------------------------------------------------------


def _copy_sqlite(source_path, target: Path) -> None:
    """SQLite's online backup: a consistent copy while the portal keeps writing."""
    source = sqlite3.connect(source_path)
    destination = sqlite3.connect(target)
    try:
        with destination:
            source.backup(destination)
    finally:
        destination.close()
        source.close()


def _dump_sqlite(engine: Engine, target: Path) -> None:
    _copy_sqlite(_sqlite_path(engine), target)


def _dump_postgres(engine: Engine, target: Path) -> None:
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError("pg_dump is missing: apt-get install postgresql-client")
    done = subprocess.run(  # noqa: S603 - fixed program, URL from the configuration
        [pg_dump, "--format=custom", "--enable-row-security", "--no-owner",
         f"--file={target}", f"--dbname={_libpq_url(engine)}"],
        env=_pg_env(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()}")


def make_backup(path: Path) -> dict:
    """Write the archive at `path`; returns its manifest."""
    engine = _owner_engine()
    try:
        manifest = {
            "format": FORMAT, "created_at": clock.now().isoformat(),
            "dialect": engine.dialect.name, "tables": row_counts(engine),
            "stored_reports": stored_report_hashes(engine),
            "files": _file_hashes(_upload_root()),
        }
        with tempfile.TemporaryDirectory(prefix="portal-backup-") as scratch:
            dump = Path(scratch) / "database"
            member = SQLITE_MEMBER if engine.dialect.name == "sqlite" else POSTGRES_MEMBER
            if engine.dialect.name == "sqlite":
                _dump_sqlite(engine, dump)
            else:
                _dump_postgres(engine, dump)
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".part")
            with tarfile.open(partial, "w:gz") as archive:
                _add_bytes(archive, MANIFEST, json.dumps(manifest, indent=1).encode())
                archive.add(dump, arcname=member)
                root = _upload_root()
                for name in manifest["files"]:
                    archive.add(root / name, arcname=FILES_PREFIX + name)
            os.replace(partial, path)
    finally:
        if engine is not db.engine:
            engine.dispose()
    return manifest


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), int(clock.now().timestamp()), 0o600
    archive.addfile(info, io.BytesIO(data))


# --- restore ---------------------------------------------------------------------------------


def _restore_sqlite(engine: Engine, source: Path) -> None:
    db.session.remove()
    engine.dispose()  # no pooled connection may hold the old file open
    target = _sqlite_path(engine)
    target.parent.mkdir(parents=True, exist_ok=True)
    _copy_sqlite(source, target)


def _restore_postgres(engine: Engine, source: Path) -> None:
    pg_restore = shutil.which("pg_restore")
    if pg_restore is None:
        raise BackupError("pg_restore is missing: apt-get install postgresql-client")
    db.session.remove()
    db.engine.dispose()
    done = subprocess.run(  # noqa: S603 - fixed program, URL from the configuration
        [pg_restore, "--clean", "--if-exists", "--no-owner", "--single-transaction",
         "--exit-on-error", f"--dbname={_libpq_url(engine)}", str(source)],
        env=_pg_env(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()}")


def _file_members(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """The stored files of the archive, renamed relative to UPLOAD_ROOT.

    Raises BackupError, before anything is restored, for a name that would land outside
    the folder or anything but a plain file.
    """
    members = []
    for member in archive.getmembers():
        if not member.name.startswith(FILES_PREFIX):
            continue
        name = member.name[len(FILES_PREFIX):]
        parts = Path(name).parts
        if not member.isfile() or not parts or name.startswith(("/", "\\")) \
                or ".." in parts or ":" in parts[0]:
            raise BackupError(f"the archive names a file outside the upload folder: "
                              f"{member.name!r}")
        member.name = name
        members.append(member)
    return members


def _restore_files(archive: tarfile.TarFile, members: list[tarfile.TarInfo], root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    # The 'data' filter refuses again absolute names, '..', links and devices.
    archive.extractall(root, members=members, filter="data")


def restore_backup(path: Path, *, force: bool = False) -> dict:
    """Restore the archive at `path`; returns its manifest after checking the result.

    Raises BackupError for an archive of another database kind, a database that holds rows
    (without `force`), or a result that differs from the manifest.
    """
    engine = _owner_engine()
    try:
        with tarfile.open(path, "r:gz") as archive:
            manifest = json.loads(archive.extractfile(MANIFEST).read())
            if manifest.get("format") != FORMAT:
                raise BackupError(f"unknown backup format {manifest.get('format')!r}")
            if manifest["dialect"] != engine.dialect.name:
                raise BackupError(f"this is a {manifest['dialect']} backup; the portal runs on "
                                  f"{engine.dialect.name}")
            name = SQLITE_MEMBER if engine.dialect.name == "sqlite" else POSTGRES_MEMBER
            database = archive.getmember(name)  # before the files are renamed
            files = _file_members(archive)
            if not force and not _is_empty(row_counts(engine)):
                raise BackupError("the database already holds data; restore over it only "
                                  "with --force")
            with tempfile.TemporaryDirectory(prefix="portal-restore-") as scratch:
                dump = Path(scratch) / name
                dump.write_bytes(archive.extractfile(database).read())
                if engine.dialect.name == "sqlite":
                    _restore_sqlite(engine, dump)
                else:
                    _restore_postgres(engine, dump)
            _restore_files(archive, files, _upload_root())
        _verify(engine, manifest)
    finally:
        if engine is not db.engine:
            engine.dispose()
    return manifest


def _verify(engine: Engine, manifest: dict) -> None:
    counts, hashes = row_counts(engine), stored_report_hashes(engine)
    files = _file_hashes(_upload_root())
    problems = [f"table {t}: {manifest['tables'][t]} rows backed up, {counts.get(t)} restored"
                for t in manifest["tables"] if counts.get(t) != manifest["tables"][t]]
    problems += [f"stored reports {k} differ" for k, v in manifest["stored_reports"].items()
                 if hashes.get(k) != v]
    problems += [f"file {name} missing or changed" for name, digest in manifest["files"].items()
                 if files.get(name) != digest]
    if problems:
        raise BackupError("the restore does not match the backup: " + "; ".join(problems[:10]))


# --- commands ----------------------------------------------------------------------------------


def _summary(manifest: dict) -> str:
    rows = sum(manifest["tables"].values())
    reports = sum(len(v) for v in manifest["stored_reports"].values())
    return (f"{len(manifest['tables'])} tables, {rows} rows, {reports} stored reports, "
            f"{len(manifest['files'])} files ({manifest['dialect']})")


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup_command(path: Path):
    """Write the database and the stored files to one archive at PATH (.tar.gz)."""
    with unscoped("a backup reads the whole database"):
        manifest = make_backup(path)
    click.echo(f"backup written to {path}: {_summary(manifest)}")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Restore over a database that holds data.")
@with_appcontext
def restore_command(path: Path, force: bool):
    """Restore the database and the stored files from the archive at PATH."""
    with unscoped("a restore writes the whole database"):
        manifest = restore_backup(path, force=force)
    click.echo(f"restored from {path}: {_summary(manifest)}; counts and hashes match")

"""Backups: `flask backup` / `restore` round-trip the database and the stored files.

Each test builds its own databases (the restore replaces a whole database), fills one with
the standard world, stored evaluation reports and evidence files, backs it up, restores it
elsewhere and compares row counts of every table, the SHA-256 of every stored report and of
every file. On PostgreSQL the dump and the restore run as the schema owner
(MIGRATION_DATABASE_URL) while the portal itself connects as the plain application role.
"""
import hashlib
import os
from pathlib import Path

import pytest
from flask import g

from portal import backup
from portal.extensions import db
from portal.tenancy import unscoped
from tests.realapp import POSTGRES, Site, session_client


@pytest.fixture
def sites(tmp_path):
    made = []

    def make(name: str, *, migrate: bool = True) -> Site:
        made.append(Site(tmp_path / name, migrate=migrate))
        return made[-1]

    yield make
    for site in made:
        site.close()


def _fill(site: Site) -> None:
    """The standard world, stored reports of two agencies, a ranking report and evidence."""
    from tests.evaluation.factories import light_ranking, light_report
    from tests.factories import build_world

    with site.app.test_request_context():
        world = build_world()
        with unscoped("the backup test fills the whole network"):
            g._audit_actor = None
            for agency in (world.a, world.b):
                light_report(agency).content = b"%PDF-1.4 " + os.urandom(2048)
            light_ranking()
            db.session.commit()
    evidence = site.folder / "files" / "settlement" / "1"
    evidence.mkdir(parents=True)
    (evidence / "invoice.pdf").write_bytes(b"%PDF-1.4 invoice " + os.urandom(4096))
    (evidence / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(1024))


def test_backup_and_restore_lose_nothing(sites, tmp_path, capsys):
    source = sites("source")
    _fill(source)
    archive = tmp_path / "portal-backup.tar.gz"
    result = source.cli("backup", str(archive))
    assert result.exit_code == 0, result.output
    assert "backup written" in result.output

    target = sites("target", migrate=False)  # a new, empty database: nothing migrated
    result = target.cli("restore", str(archive))
    assert result.exit_code == 0, result.output + repr(result.exception)

    counts, restored = source.counts(), target.counts()
    assert restored == counts
    assert sum(counts.values()) > 30 and counts["agencies"] == 3
    assert target.hashes() == source.hashes()
    assert len(target.hashes()["evaluation_reports.content"]) == 2
    assert target.files() == source.files() and len(target.files()) == 2
    # The restored portal works: its application role reads the network for a signed-in HQ
    # admin (the session cookie of the restored account).
    with target.app.app_context(), unscoped("find an account of the restored network"):
        from sqlalchemy import select

        from portal.auth.models import User

        admin_id = db.session.scalar(select(User.id).where(User.role == "hq_admin"))
    page = session_client(target.app, admin_id).get("/agencies/")
    assert page.status_code == 200 and b"A-OWN" in page.data and b"B-FOR" in page.data
    with capsys.disabled():
        print(f"\nbackup round trip ({'PostgreSQL' if POSTGRES else 'SQLite'}): "
              f"{len(counts)} tables, {sum(counts.values())} rows, "
              f"{sum(len(v) for v in source.hashes().values())} stored reports, "
              f"{len(source.files())} files compared")


def test_restore_refuses_a_database_with_data_unless_forced(sites, tmp_path):
    source = sites("source")
    _fill(source)
    archive = tmp_path / "portal-backup.tar.gz"
    assert source.cli("backup", str(archive)).exit_code == 0
    before = source.counts()
    # Change the live database after the backup: a refused restore must keep the change.
    with source.app.app_context(), unscoped("test writes after the backup"):
        from tests.factories import make_region

        make_region("R-AFTER")
        db.session.commit()
    refused = source.cli("restore", str(archive))
    assert refused.exit_code != 0
    assert "--force" in refused.output
    assert source.counts()["regions"] == before["regions"] + 1

    forced = source.cli("restore", str(archive), "--force")
    assert forced.exit_code == 0, forced.output + repr(forced.exception)
    assert source.counts() == before


def test_a_backup_of_another_database_kind_is_refused(sites, tmp_path):
    import io
    import json
    import tarfile

    site = sites("site", migrate=False)
    archive = tmp_path / "foreign.tar.gz"
    manifest = json.dumps({"format": backup.FORMAT, "dialect": "oracle", "tables": {},
                           "stored_reports": {}, "files": {}}).encode()
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo(backup.MANIFEST)
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    result = site.cli("restore", str(archive))
    assert result.exit_code != 0 and "oracle backup" in result.output


def test_file_names_in_an_archive_cannot_escape_the_upload_folder(sites, tmp_path):
    """A doctored archive naming ../ or absolute paths writes nothing outside UPLOAD_ROOT."""
    import io
    import tarfile

    source = sites("source")
    archive = tmp_path / "portal-backup.tar.gz"
    assert source.cli("backup", str(archive)).exit_code == 0
    doctored = tmp_path / "doctored.tar.gz"
    with tarfile.open(archive, "r:gz") as original, tarfile.open(doctored, "w:gz") as out:
        for member in original.getmembers():
            out.addfile(member, original.extractfile(member))
        payload = b"escaped"
        for name in ("files/../../escaped.txt", "files//tmp/escaped-absolute.txt"):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            out.addfile(info, io.BytesIO(payload))
    result = source.cli("restore", str(doctored), "--force")
    assert result.exit_code != 0
    assert not (tmp_path / "escaped.txt").exists()
    assert not (source.folder / "escaped.txt").exists()
    assert not Path("/tmp/escaped-absolute.txt").exists()  # noqa: S108 - the attack's target


def test_the_dump_is_the_database_kind_of_the_portal(sites, tmp_path):
    import tarfile

    source = sites("source")
    archive = tmp_path / "b.tar.gz"
    assert source.cli("backup", str(archive)).exit_code == 0
    with tarfile.open(archive, "r:gz") as tar:
        names = tar.getnames()
        dump = tar.extractfile(backup.POSTGRES_MEMBER if POSTGRES
                               else backup.SQLITE_MEMBER).read()
    assert backup.MANIFEST in names
    # pg_dump's custom format starts with PGDMP; an SQLite file with its header.
    assert dump.startswith(b"PGDMP" if POSTGRES else b"SQLite format 3\x00")
    assert hashlib.sha256(dump).hexdigest()

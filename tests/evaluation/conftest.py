"""Fixtures of the evaluation tests: an HQ scope for service tests, audit counts, fast PDFs."""
import pytest
from flask import g
from sqlalchemy import func, select

from portal.audit.models import AuditEntry
from portal.extensions import db
from portal.tenancy import unscoped


@pytest.fixture
def hq(ctx, world):
    """Service tests act as HQ: the whole network visible, no signed-in actor."""
    with unscoped("service tests act as HQ service quality"):
        g._audit_actor = None
        yield world


def audits(action: str) -> int:
    with unscoped("tests count audit entries"):
        return db.session.scalar(select(func.count(AuditEntry.id))
                                 .where(AuditEntry.action == action))


@pytest.fixture
def fast_pdfs(monkeypatch):
    """Stand-in PDFs for tests that do not read them: a few bytes that still differ by
    report, version and language (rendering is timed and read back in test_reports)."""
    from evaluation import reports

    def fake(figures, locale):
        return f"%PDF-1.4 {figures['number']} {locale} {reports.fingerprint(figures)}".encode()

    monkeypatch.setattr(reports, "render_report", fake)
    monkeypatch.setattr(reports, "render_ranking", fake)

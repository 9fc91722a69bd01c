"""The one write path (#14): every change is a declared transition with a policy, a translated
name, one audit entry and a signal; every POST route performs transitions or reads only; the
rules that keep it so are checked over the code itself."""
import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from blinker import NamedSignal

from portal import policy, transitions
from portal.audit.models import AuditEntry
from portal.auth.access import policy_of
from portal.auth.roles import Role
from portal.config import PROJECT_ROOT
from portal.errors_domain import DomainError
from portal.extensions import db
from portal.tenancy import ALL, unscoped

PACKAGES = ("portal", "tenants", "certification", "service", "dispatch", "settlement", "evaluation",
            "inbox", "api")


def _sources(*packages):
    for package in packages or PACKAGES:
        yield from sorted((PROJECT_ROOT / package).rglob("*.py"))


def _zh_catalog() -> dict:
    messages = {}
    for path in (PROJECT_ROOT / "translations").glob("*/zh_CN/LC_MESSAGES/messages.po"):
        with path.open("rb") as f:
            for message in read_po(f):
                if message.id and message.string and not message.fuzzy:
                    messages[message.id] = message.string
    return messages


def test_every_transition_has_a_policy_a_translated_name_and_a_signal(app):
    declared = transitions.registry()
    assert len(declared) > 50  # every area's changes, not a handful
    zh = _zh_catalog()
    incomplete = []
    for name, t in sorted(declared.items()):
        try:
            rule = policy.rule_of(t.permission)
        except LookupError:
            incomplete.append(f"{name}: no policy declares {t.permission!r}")
            continue
        if not rule.roles and not rule.system:
            incomplete.append(f"{name}: its policy lets nobody do it")
        label = getattr(t.label, "_args", (None,))[0]
        if label not in zh:
            incomplete.append(f"{name}: its name {label!r} has no zh_CN translation")
        if not isinstance(t.signal, NamedSignal) or t.signal.name != name:
            incomplete.append(f"{name}: no signal of its own")
        if t.source is not None and t.target is not None and t.target in t.source:
            incomplete.append(f"{name}: ends where it starts")
        if not re.fullmatch(r"[a-z_]+\.[a-z_.]+", name):
            incomplete.append(f"{name}: not an audit action name (area.what_happened)")
    assert not incomplete, "\n".join(incomplete)


def test_every_post_route_performs_declared_transitions_or_reads_only(ctx, app):
    declared = transitions.registry()
    unmapped = []
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods:
            continue
        access = policy_of(rule.endpoint)
        if access.read_only and not access.transitions:
            continue
        if not access.transitions:
            unmapped.append(f"{rule.endpoint}: performs no declared transition")
        unmapped += [f"{rule.endpoint}: {n!r} is not a transition" for n in access.transitions
                     if n not in declared]
    assert not unmapped, "\n".join(unmapped)


def test_route_guards_never_let_in_a_role_the_policies_refuse(ctx, app):
    """A view that performs transitions admits only roles their policies allow (a page may be
    stricter: the delegation page lists every role's rule but serves only delegators)."""
    wrong = []
    for rule in app.url_map.iter_rules():
        access = policy_of(rule.endpoint)
        if access is None or access.public or not access.transitions:
            continue
        allowed = set(policy.roles(*(transitions.get(n).permission
                                     for n in access.transitions)))
        if not set(access.roles) <= allowed:
            wrong.append(f"{rule.endpoint}: guard {sorted(access.roles)} vs policy "
                         f"{sorted(allowed)}")
    assert not wrong, "\n".join(wrong)


def test_a_transition_writes_one_audit_entry_and_sends_its_signal(ctx):
    from portal.auth.services import change_locale
    from tests.factories import make_user

    with unscoped("test makes an account"):
        user = make_user(Role.HQ_ADMIN, locale="zh_CN")
    heard = []
    t = transitions.get("user.locale_changed")
    with t.signal.connected_to(lambda sender, **kw: heard.append((sender, kw))), \
            transitions.transitioned.connected_to(lambda sender, **kw: heard.append(sender)), \
            unscoped("the account's own row, as its signed-in scope would see it"):
        change_locale(user, "en", acting_user=user)
    assert user.locale == "en"
    ((sender, sent), generic) = heard
    assert sender is t and generic is t
    assert sent["record"] is user and sent["actor"] is user and sent["transition"] is t
    with unscoped("test reads the log"):
        (entry,) = db.session.scalars(db.select(AuditEntry).where(
            AuditEntry.action == "user.locale_changed")).all()
    assert (entry.actor_id, entry.before, entry.after) == (user.id, {"locale": "zh_CN"},
                                                           {"locale": "en"})


def test_a_policy_refusal_changes_nothing_and_writes_nothing(ctx):
    from portal import jobs
    from portal.jobs_views import retry_job
    from tests.factories import make_user

    with unscoped("test makes accounts and a job"):
        auditor, admin = make_user(Role.AUDITOR), make_user(Role.HQ_ADMIN)
        job = jobs.Job(kind="no-such-kind", params={}, scope=ALL.encode(),
                       status=jobs.FAILED, attempts=1)
        db.session.add(job)
        db.session.flush()
    with pytest.raises(DomainError, match="role cannot"):
        retry_job(job, acting_user=auditor)
    with pytest.raises(DomainError, match="Only the roles that may start"):
        retry_job(job, acting_user=admin)  # nobody may start an unknown kind
    assert job.status == jobs.FAILED
    with unscoped("test reads the log"):
        assert not db.session.scalars(db.select(AuditEntry).where(
            AuditEntry.action == "job.retried")).all()


# --- the rules over the code ---------------------------------------------------------------


def test_no_stale_data_error_handling_outside_the_write_path():
    offenders = [str(p.relative_to(PROJECT_ROOT)) for p in _sources()
                 if "StaleDataError" in p.read_text() and p.name != "transitions.py"]
    assert offenders == []


def test_services_never_read_the_signed_in_user(app):
    """Modules that declare transitions take the actor as `acting_user=`."""
    modules = {t.module for t in transitions.registry().values()}
    offenders = []
    for module in sorted(modules):
        source = Path(sys.modules[module].__file__).read_text()
        if re.search(r"\bcurrent_user\b", source) and not module.endswith(("views", "_views")) \
                and ".views" not in module:
            offenders.append(module)
    assert offenders == []


def test_views_commit_only_through_the_one_commit_point():
    offenders = []
    for path in _sources():
        if "views" not in path.name and path.name != "web.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("commit", "rollback") \
                    and isinstance(node.value, ast.Attribute) and node.value.attr == "session":
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}")
    assert offenders == []


ROLE_NAMES = "|".join(r.value for r in Role)


def test_templates_hold_no_role_names():
    offenders = []
    for path in sorted((PROJECT_ROOT / "templates").rglob("*.html")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"current_user\.role\b(?!_enum\.label)", line) or \
                    re.search(rf"""(==|!=)\s*['"]({ROLE_NAMES})['"]""", line) or \
                    re.search(rf"""\bin\s*[(\[][^)\]]*['"]({ROLE_NAMES})['"]""", line):
                offenders.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


# --- the layer contract ----------------------------------------------------------------------


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - the project's own linter on a copy of its code
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=root, capture_output=True, text=True, timeout=120,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_the_layer_contract_holds_and_catches_an_upward_import(tmp_path):
    for package in PACKAGES:
        shutil.copytree(PROJECT_ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "static"))
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path)
    kept = _lint_imports(tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    (tmp_path / "tenants" / "upward.py").write_text("from settlement import rules  # noqa\n")
    broken = _lint_imports(tmp_path)
    assert broken.returncode != 0
    assert "tenants.upward -> settlement.rules" in broken.stdout

"""pip-audit finds no known vulnerability in the pinned dependencies (pyproject.toml).

pip-audit asks a vulnerability service about each pin: PyPI's JSON API (`-s pypi`) or OSV
(`-s osv`). Where neither answers (a machine that reaches only the package index), the test
skips and says exactly what failed; it never passes without an answer.
"""
import json
import shutil
import subprocess  # noqa: S404 - pip-audit, with an argument list
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PIP_AUDIT = shutil.which("pip-audit", path=str(Path(sys.executable).parent)) \
    or shutil.which("pip-audit")


def _pins() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        pins += extra
    return pins


def _audit(requirements: Path, service: str) -> tuple[dict | None, str]:
    """(pip-audit's JSON report, or None when it could not run; its error output)."""
    done = subprocess.run(  # noqa: S603 - fixed program and arguments
        [PIP_AUDIT, "-r", str(requirements), "--no-deps", "--disable-pip", "-s", service,
         "-f", "json", "--progress-spinner", "off", "--timeout", "30"],
        capture_output=True, text=True, timeout=600, check=False)
    try:
        return json.loads(done.stdout), done.stderr
    except json.JSONDecodeError:
        return None, done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""


def test_pinned_dependencies_have_no_known_vulnerability(tmp_path, capsys):
    if PIP_AUDIT is None:
        pytest.fail("pip-audit is missing: it is pinned in the dev extras (pip install -e .[dev])")
    pins = _pins()
    assert all("==" in pin for pin in pins), [p for p in pins if "==" not in p]
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("\n".join(pins) + "\n")
    unreachable = []
    for service in ("pypi", "osv"):
        report, error = _audit(requirements, service)
        if report is None:
            unreachable.append(f"-s {service}: pip-audit failed ({error[:200]})")
            continue
        audited = [d for d in report["dependencies"] if "skip_reason" not in d]
        if not audited:
            reason = report["dependencies"][0]["skip_reason"] if report["dependencies"] else ""
            unreachable.append(f"-s {service}: none of {len(pins)} pins audited ({reason})")
            continue
        vulnerable = {d["name"]: [v["id"] for v in d["vulns"]] for d in audited if d["vulns"]}
        skipped = sorted(d["name"] for d in report["dependencies"] if "skip_reason" in d)
        with capsys.disabled():
            print(f"\npip-audit -s {service}: {len(audited)} of {len(pins)} pinned packages "
                  f"audited, {len(vulnerable)} with known vulnerabilities"
                  + (f"; not audited: {skipped}" if skipped else ""))
        assert not vulnerable, vulnerable
        return
    pytest.skip("no vulnerability service reachable from here: " + "; ".join(unreachable))

"""A broken setting or data file stops start-up with one line naming it, and no traceback.

Each case runs the real command line as a subprocess (`python -m cds_service serve`, and the
`b12-cds` console script that `scripts/run.sh` execs) and checks what an operator sees: exit status 2,
exactly one line on stderr, naming the variable or the file and the field.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cds_service.config import DEFAULT_HOOKS_DIR, PACKAGE_DIR
from cds_service.knowledge import DEFAULT_DIRECTORY as KNOWLEDGE_DIR
from cds_service.knowledge.wording import WORDING_FILE
from tests.support.project import PROJECT

BIN = Path(sys.executable).parent


def start(tmp_path: Path, *, console_script: bool = False, pythonpath: Path | None = None,
          **settings: str) -> subprocess.CompletedProcess[str]:
    """Start the service (port 0 is never reached: start-up must fail first) and return what it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"CDS_DATABASE_URL": f"sqlite:///{tmp_path}/cds.db", **settings})
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    command = [str(BIN / "b12-cds")] if console_script else [sys.executable, "-m", "cds_service"]
    return subprocess.run([*command, "serve", "--port", "1", "--workers", "1"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=120)


def assert_one_line_naming(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    lines = result.stderr.splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert lines[0].startswith("b12-cds: cannot start: "), lines[0]
    return lines[0]


def test_a_broken_knowledge_file_names_the_file_and_field(tmp_path: Path) -> None:
    knowledge = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, knowledge, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    thresholds = json.loads((knowledge / "thresholds.json").read_text(encoding="utf-8"))
    thresholds["thresholds"] = [t for t in thresholds["thresholds"] if t.get("key") != "mma.uln"]
    (knowledge / "thresholds.json").write_text(json.dumps(thresholds), encoding="utf-8")
    assert_one_line_naming(start(tmp_path, CDS_KNOWLEDGE_DIR=str(knowledge)), "thresholds.json", "mma.uln")


def test_a_knowledge_file_that_is_not_json_names_the_file(tmp_path: Path) -> None:
    knowledge = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, knowledge, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (knowledge / "citations.json").write_text('{"citations": [', encoding="utf-8")
    assert_one_line_naming(start(tmp_path, CDS_KNOWLEDGE_DIR=str(knowledge)), "citations.json")


def test_a_broken_service_file_names_the_file_and_field(tmp_path: Path) -> None:
    hooks = tmp_path / "hooks"
    shutil.copytree(DEFAULT_HOOKS_DIR, hooks)
    service = json.loads((hooks / "b12-patient-view.json").read_text(encoding="utf-8"))
    del service["title"]
    (hooks / "b12-patient-view.json").write_text(json.dumps(service), encoding="utf-8")
    assert_one_line_naming(start(tmp_path, console_script=True, CDS_HOOKS_DIR=str(hooks)),
                           "b12-patient-view.json", "title")


def _package_copy(tmp_path: Path) -> Path:
    """A copy of the package (links resolved) to break its wording file; first on PYTHONPATH."""
    root = tmp_path / "site"
    shutil.copytree(PACKAGE_DIR, root / PACKAGE_DIR.name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def _wording_in(root: Path) -> Path:
    return root / WORDING_FILE.relative_to(PACKAGE_DIR.parent)


def test_a_rule_family_without_wording_stops_start_up(tmp_path: Path) -> None:
    root = _package_copy(tmp_path)
    wording = json.loads(_wording_in(root).read_text(encoding="utf-8"))
    del wording["families"]["nitrous-oxide-risk"]
    _wording_in(root).write_text(json.dumps(wording), encoding="utf-8")
    assert_one_line_naming(start(tmp_path, pythonpath=root), "wording.json", "families.nitrous-oxide-risk")


def test_a_broken_wording_field_names_the_file_and_field(tmp_path: Path) -> None:
    root = _package_copy(tmp_path)
    wording = json.loads(_wording_in(root).read_text(encoding="utf-8"))
    wording["families"]["mma-testing"]["source_label"] = " "
    _wording_in(root).write_text(json.dumps(wording), encoding="utf-8")
    assert_one_line_naming(start(tmp_path, pythonpath=root), "wording.json", "families.mma-testing.source_label")


def test_wording_is_cross_checked_with_the_knowledge_it_names(tmp_path: Path) -> None:
    """The wording is knowledge: a site's copy under CDS_KNOWLEDGE_DIR carries it, and the loader
    checks it against the citations (and the status tags against the thresholds)."""
    knowledge = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, knowledge, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    wording = json.loads((knowledge / "wording.json").read_text(encoding="utf-8"))
    wording["families"]["b12-testing"]["source_citation"] = "no-such-guideline"
    (knowledge / "wording.json").write_text(json.dumps(wording), encoding="utf-8")
    assert_one_line_naming(start(tmp_path, CDS_KNOWLEDGE_DIR=str(knowledge)), "wording.json",
                           "families.b12-testing.source_citation")
    del wording["status_tags"]["design"]
    wording["families"]["b12-testing"]["source_citation"] = "nice-ng239"
    (knowledge / "wording.json").write_text(json.dumps(wording), encoding="utf-8")
    assert_one_line_naming(start(tmp_path, CDS_KNOWLEDGE_DIR=str(knowledge)), "wording.json", "status_tags")


def test_a_wording_file_that_is_not_json_names_the_file(tmp_path: Path) -> None:
    root = _package_copy(tmp_path)
    _wording_in(root).write_text("{\n  \"families\": ", encoding="utf-8")
    assert_one_line_naming(start(tmp_path, pythonpath=root), "wording.json", "not valid JSON")


@pytest.mark.parametrize(("settings", "fragment"), [
    ({"CDS_FETCH_BUDGET_MS": "lots"}, "CDS_FETCH_BUDGET_MS: 'lots' is not an integer"),
    ({"CDS_MAX_BODY_BYTES": "10"}, "CDS_MAX_BODY_BYTES"),
    ({"CDS_ENV": "production"}, "CDS_CORS_ORIGINS"),
    ({"CDS_THRESHOLD_OVERRIDES": "mma.nope=1"}, "CDS_THRESHOLD_OVERRIDES"),
    ({"CDS_SUPPRESSION_DAYS": "mma-testng=3"}, "CDS_SUPPRESSION_DAYS"),
    ({"CDS_SHADOW_SERVICES": "b12-patient-veiw"}, "CDS_SHADOW_SERVICES"),
    ({"CDS_TRUSTED_ISSUERS": "{"}, "CDS_TRUSTED_ISSUERS: not valid JSON"),
    ({"CDS_PUBLIC_BASE_URL": "cds.example.org"}, "CDS_PUBLIC_BASE_URL"),
])
def test_a_bad_setting_names_the_variable(tmp_path: Path, settings: dict[str, str], fragment: str) -> None:
    assert_one_line_naming(start(tmp_path, **settings), fragment)


def test_scripts_run_sh_prints_the_same_one_line(tmp_path: Path) -> None:
    """scripts/run.sh sets up quietly (its output is shown only when set-up fails), then execs b12-cds.

    Its set-up step (`pip install -e .`, about 3 s) is idempotent; the checkout's .venv must exist
    already, as it does under scripts/test.sh.
    """
    if not (PROJECT / ".venv" / "bin" / "b12-cds").exists():
        pytest.skip("scripts/run.sh uses the checkout's .venv, which this run does not have")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDS_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    env.update({"CDS_DATABASE_URL": f"sqlite:///{tmp_path}/cds.db", "CDS_FETCH_BUDGET_MS": "lots"})
    result = subprocess.run(["bash", str(PROJECT / "scripts" / "run.sh"), "--port", "1", "--workers", "1"],
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert_one_line_naming(result, "CDS_FETCH_BUDGET_MS: 'lots' is not an integer")

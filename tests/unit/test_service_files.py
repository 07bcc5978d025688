"""Service files in hooks/: validated at start-up; a broken one names the file and field."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cds_service import create_app
from cds_service.protocol.services import ServiceDefinitionError, check_template
from tests.support.project import PROJECT


@pytest.fixture
def hooks_copy(tmp_path: Path) -> Path:
    target = tmp_path / "hooks"
    shutil.copytree(PROJECT / "hooks", target)
    return target


def edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def start(app_config, hooks: Path):
    return create_app({**app_config, "HOOKS_DIR": str(hooks)})


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda d: d.pop("description"), "description"),
        (lambda d: d.update(hook="patient-open"), "hook"),
        (lambda d: d.update(families=["no-such-family"]), "no-such-family"),
        (lambda d: d["prefetch"]["labs"].update(template="Observation?patient={{Patient.id}}"),
         "prefetch.labs.template"),
        (lambda d: d["prefetch"]["labs"].update(template="Observation?patient={{context.medication.id}}"),
         "prefetch.labs.template"),
        (lambda d: d["prefetch"]["labs"].pop("required"), "required"),
        (lambda d: d.update(name="old 1.0 field"), "name"),
    ],
)
def test_broken_service_file_stops_startup_naming_file_and_field(app_config, hooks_copy, change, fragment):
    edit(hooks_copy / "b12-patient-view.json", change)
    with pytest.raises(ServiceDefinitionError) as err:
        start(app_config, hooks_copy)
    assert "b12-patient-view.json" in str(err.value)
    assert fragment in str(err.value)


def test_invalid_json_names_the_file(app_config, hooks_copy):
    (hooks_copy / "b12-order-sign.json").write_text("{")
    with pytest.raises(ServiceDefinitionError, match="b12-order-sign.json: not valid JSON"):
        start(app_config, hooks_copy)


def test_id_must_match_file_name(app_config, hooks_copy):
    edit(hooks_copy / "b12-order-sign.json", lambda d: d.update(id="other"))
    with pytest.raises(ServiceDefinitionError, match="must match the file name"):
        start(app_config, hooks_copy)


@pytest.mark.parametrize(
    ("template", "ok"),
    [
        ("Patient/{{context.patientId}}", True),
        ("Observation?patient={{context.patientId}}&code=http://loinc.org|2132-9&_sort=-date", True),
        ("Practitioner/{{userPractitionerId}}", True),
        ("Observation?patient={{context.patientId}}&date=gt{{today() - 90 days}}", False),  # 3.0 only
        ("Observation?patient={{context.draftOrders}}", False),
        ("http://ehr.example.org/fhir/Patient/1", False),
    ],
)
def test_templates_use_only_cds_hooks_2_tokens(template, ok):
    assert (check_template(template, "order-sign") is None) is ok


def test_shipped_templates_ask_only_for_active_lab_codes(app):
    kb = app.extensions["b12_cds"].knowledge
    for service in app.extensions["b12_cds"].services.values():
        labs = next(p.template for p in service.prefetch if p.key == "labs")
        codes = labs.split("code=")[1].split("&")[0].split(",")
        for coded in codes:
            system, code = coded.split("|")
            assert kb.lab_analyte(system, code), f"{service.id}: {code} is not an active lab code"

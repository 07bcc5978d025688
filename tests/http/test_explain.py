"""The rule explanation pages (/explain/<family>): content from knowledge, no patient data, no JWT.

What must hold (issue 15):
- each family's page lists every threshold the family uses, with value, unit, status and source,
  and the page agrees with the knowledge files (families.json, thresholds.json, citations.json);
- the thresholds the rule code actually reads, over every fixture scenario, are all on the page
  (collected by running each family's rule on each fixture patient with a knowledge view that
  records every threshold key asked for);
- it holds no patient data, answers without a client JWT when verification is on, and conforms to
  openapi.yaml.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from cds_service import create_app
from cds_service.clinical.rules import FAMILIES
from cds_service.engine import Engine
from cds_service.knowledge import KnowledgeError
from cds_service.knowledge.explain import load_families
from cds_service.protocol.request import parse_hook_request
from tests.support.project import EVALUATION_TIME, PROJECT
from tests.support.scenarios import load_patient, load_scenarios, request_for

KNOWLEDGE_DIR = PROJECT / "cds_service" / "knowledge"
CONTRACT_FAMILIES = ("mma-testing", "folate-without-b12", "urgent-neuro-review", "b12-untreated",
                     "nitrous-oxide-risk", "b12-testing")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    db = tmp_path_factory.mktemp("explain") / "cds.db"
    app = create_app({"TESTING": True, "EVALUATION_TIME": EVALUATION_TIME, "DATABASE_URL": f"sqlite:///{db}",
                      "THRESHOLD_OVERRIDES": "mma.uln=0.36"})
    return app.test_client()


class RecordingKnowledge:
    """The real knowledge, noting every threshold key a rule reads (threshold() and value())."""

    def __init__(self, kb: Any) -> None:
        self._kb = kb
        self.keys: set[str] = set()

    def threshold(self, key: str) -> Any:
        self.keys.add(key)
        return self._kb.threshold(key)

    def value(self, key: str) -> float:
        self.keys.add(key)
        return self._kb.value(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._kb, name)


def _threshold_keys(kb: Any, applied: Any) -> set[str]:
    """The knowledge keys a ThresholdApplied can stand for (same unit, status, citation and number(s))."""
    numbers = {float(n) for n in re.findall(r"\d+(?:\.\d+)?", applied.value)}
    found = set()
    for key, t in kb.thresholds.items():
        unit_ok = applied.value.endswith(f" {t.unit}") or applied.value.endswith(f" {kb.unit_display.name(t.unit)}")
        if unit_ok and t.value in numbers and t.citation == applied.citation:
            found.add(key)
    return found


@pytest.fixture(scope="module")
def applied_keys(kb) -> dict[str, set[str]]:
    """Family -> threshold keys its rule read, over every fixture scenario (patient + hook + drafts).

    Two sources, both from running the real code on every fixture scenario: the keys the family's
    own rule asks the knowledge for (a recording knowledge view), and the ThresholdApplied entries of
    its findings (what it reports having compared against; such an entry names no key, so it stands
    for the keys with its number, unit and citation, and one of them must be listed). Thresholds of
    the shared assessment are read once per request for all families and cannot be attributed to
    one of them by recording; the ThresholdApplied entries cover those a family relies on.
    """
    from cds_service.clinical.assessment import assess

    app = create_app({"TESTING": True, "EVALUATION_TIME": EVALUATION_TIME, "DATABASE_URL": "sqlite://"})
    st = app.extensions["b12_cds"]
    engine = Engine(st.knowledge, st.engine.clock)
    services = {s.hook: s for s in st.services.values()}
    found: dict[str, set[str]] = {family: set() for family in FAMILIES}
    reported: dict[str, list[set[str]]] = {family: [] for family in FAMILIES}
    scenarios = load_scenarios()
    assert len(scenarios) >= 20
    for scenario in scenarios:
        service = services[scenario["hook"]]
        evaluation = engine.evaluate(service, parse_hook_request(request_for(scenario), service.hook))
        assessment = assess(evaluation.record, st.knowledge, scenario["hook"])
        for family, spec in FAMILIES.items():
            recorder = RecordingKnowledge(st.knowledge)
            for finding in spec.evaluate(assessment, recorder):
                for applied in finding.thresholds:
                    candidates = _threshold_keys(st.knowledge, applied)
                    assert candidates, f"{family}: {applied} matches no knowledge threshold"
                    reported[family].append(candidates)
            found[family] |= recorder.keys
    return {"read": found, "reported": reported}  # type: ignore[return-value]


# --- the data and its start-up cross-check -----------------------------------------------------------


def test_every_contract_family_has_an_explanation_entry(kb):
    assert set(CONTRACT_FAMILIES) <= set(kb.families)
    assert set(FAMILIES) <= set(kb.families)


def test_the_b12_testing_family_lists_the_look_back_and_the_mcv_threshold(kb):
    assert {"window.b12-lookback-days", "mcv.macrocytosis-above"} <= set(kb.families["b12-testing"].thresholds)


def test_an_unknown_threshold_key_or_citation_stops_start_up(kb):
    data = json.loads((KNOWLEDGE_DIR / "families.json").read_text(encoding="utf-8"))
    data["families"]["mma-testing"]["thresholds"].append("mma.no-such-key")
    with pytest.raises(KnowledgeError, match="mma.no-such-key"):
        load_families(data, kb.thresholds, kb.citations)
    data = json.loads((KNOWLEDGE_DIR / "families.json").read_text(encoding="utf-8"))
    data["families"]["b12-untreated"]["citations"] = ["no-such-guideline"]
    with pytest.raises(KnowledgeError, match="no-such-guideline"):
        load_families(data, kb.thresholds, kb.citations)


def test_a_knowledge_copy_without_a_family_entry_stops_start_up(tmp_path: Path):
    copy = tmp_path / "knowledge"
    import shutil

    shutil.copytree(KNOWLEDGE_DIR, copy, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    data = json.loads((copy / "families.json").read_text(encoding="utf-8"))
    del data["families"]["folate-without-b12"]
    (copy / "families.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(KnowledgeError, match="folate-without-b12"):
        create_app({"TESTING": True, "DATABASE_URL": "sqlite://", "KNOWLEDGE_DIR": str(copy)})


# --- the page agrees with the knowledge and with the code ---------------------------------------------


@pytest.mark.parametrize("family", CONTRACT_FAMILIES)
def test_the_page_lists_each_threshold_of_the_family_with_value_unit_status_and_source(client, family):
    kb = client.application.extensions["b12_cds"].knowledge  # with the site override of mma.uln
    page = client.get(f"/explain/{family}.json").get_json()
    entry = kb.families[family]
    assert page["family"] == family and page["rule"] == list(entry.rule)
    assert [t["key"] for t in page["thresholds"]] == list(entry.thresholds)
    for row in page["thresholds"]:
        t = kb.threshold(row["key"])
        assert (row["value"], row["unit"], row["status"]) == (t.value, t.unit, t.status)
        assert row["citation"]["id"] == t.citation and row["source"]
        assert "{" not in row["valueDisplay"] and "{" not in row["unitDisplay"]
    guideline_ids = {g["id"] for g in page["guidelines"]}
    assert set(entry.citations) <= guideline_ids and "design-convention" not in guideline_ids
    for guideline in page["guidelines"]:
        assert guideline["label"] == kb.citations[guideline["id"]].label
        if guideline["url"] is not None:
            assert re.match(r"^https://[^\s]+$", guideline["url"]), guideline


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_threshold_the_rule_code_applies_is_on_its_page(applied_keys, kb, family):
    listed = set(kb.families[family].thresholds)
    read, reported = applied_keys["read"][family], applied_keys["reported"][family]
    assert read or reported, f"no fixture scenario exercised {family}"
    missing = read - listed
    assert not missing, f"{family} reads {sorted(missing)} but /explain/{family} does not list them"
    for candidates in reported:
        assert candidates & listed, f"{family} reports a threshold {sorted(candidates)} its page does not list"


def test_the_page_shows_the_site_overrides_in_force_and_the_knowledge_version(client, kb):
    page = client.get("/explain/mma-testing.json").get_json()
    row = next(t for t in page["thresholds"] if t["key"] == "mma.uln")
    assert row["value"] == 0.36 and row["status"] == "design"
    assert row["siteOverride"]["defaultValue"] == 0.4 and row["siteOverride"]["defaultStatus"] == "V"
    assert page["siteOverrides"] == [{"key": "mma.uln", "valueDisplay": "0.36 µmol/L",
                                      "defaultDisplay": "0.4 µmol/L", "usedByThisFamily": True}]
    assert page["knowledgeVersion"] == kb.version and kb.version.startswith("sha256:")
    html = client.get("/explain/mma-testing").get_data(as_text=True)
    assert "0.36 µmol/L" in html and "site override; default 0.4 µmol/L" in html and kb.version in html


def test_html_and_json_forms_carry_the_same_thresholds(client):
    for family in CONTRACT_FAMILIES:
        page = client.get(f"/explain/{family}", headers={"Accept": "application/json"}).get_json()
        html = client.get(f"/explain/{family}").get_data(as_text=True)
        assert client.get(f"/explain/{family}").mimetype == "text/html"
        keys = re.findall(r'data-key="([^"]+)"', html)
        assert keys == [t["key"] for t in page["thresholds"]]


def test_an_unknown_family_is_a_json_404(client):
    response = client.get("/explain/no-such-family")
    assert response.status_code == 404 and response.get_json()["resourceType"] == "OperationOutcome"


# --- no patient data, no JWT -------------------------------------------------------------------------


def test_the_page_does_not_depend_on_the_request(client):
    plain = client.get("/explain/folate-without-b12.json").get_data()
    probing = client.get("/explain/folate-without-b12.json?patient=p1&patientId=Patient/123",
                         headers={"Authorization": "Bearer x", "X-Patient": "p1"}).get_data()
    assert plain == probing


def test_the_page_holds_no_patient_data(client):
    names = set()
    for scenario in load_scenarios()[:40]:
        for entry in load_patient(scenario["patient"])["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] == "Patient":
                names |= {n.get("family", "") for n in resource.get("name", [])} - {""}
                names.add(resource["id"])
    assert names
    for family in CONTRACT_FAMILIES:
        text = client.get(f"/explain/{family}").get_data(as_text=True)
        leaked = [n for n in names if re.search(rf"\b{re.escape(n)}\b", text)]
        assert not leaked, (family, leaked)


def test_the_page_needs_no_client_jwt_when_verification_is_on(tmp_path: Path):
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = {**json.loads(ECAlgorithm.to_jwk(key.public_key())), "kid": "k1", "alg": "ES384", "use": "sig"}
    app = create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/cds.db", "AUTH_REQUIRED": "true",
                      "TRUSTED_ISSUERS": json.dumps([{"iss": "https://ehr.example.org", "jwks": {"keys": [jwk]}}])})
    client = app.test_client()
    assert client.get("/cds-services").status_code == 401  # verification really is on
    for path in ("/explain", "/explain/mma-testing", "/explain/mma-testing.json", "/explain/static/explain.css"):
        assert client.get(path).status_code == 200, path
    token = jwt.encode({"iss": "https://ehr.example.org", "aud": "http://localhost/cds-services",
                        "iat": int(time.time()), "exp": int(time.time()) + 60, "jti": str(uuid.uuid4())},
                       key, algorithm="ES384", headers={"kid": "k1", "typ": "JWT"})
    assert client.get("/cds-services", headers={"Authorization": f"Bearer {token}"}).status_code == 200

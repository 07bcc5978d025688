"""Request bodies for the benchmark: deterministic synthetic charts built on a fixture patient.

The base patient is fixtures/patients/r1-indeterminate-neuropathy.json (indeterminate B12 220 pg/mL,
peripheral neuropathy): patient-view gives an mma-testing card, order-sign with a folic acid draft
gives folate-without-b12 (+ urgent-neuro-review), so every workload runs the rules to a card.

Two ways to turn a chart into prefetch:
- `honoring=True` (typical, order-sign): exactly what the hook files' templates return, through
  fixtures.build_requests.build_request (code filter on `labs`, status filter on `serviceRequests`).
- `honoring=False` (heavy, scaling): an EHR that ignores the code filter and `_count`, so every
  Observation of the chart lands in `labs`, and `_include`d Encounters ride along in the `labs`
  Bundle with search.mode = include. This is the worst case the service must still survive.
"""

from __future__ import annotations

import copy
import json
import random
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

from fixtures.build_requests import build_request, full_url, load_patient, run_template, service_definitions  # noqa: E402
from fixtures.fhir_builders import (  # noqa: E402
    COND_CATEGORY,
    COND_CLINICAL,
    COND_VERIFICATION,
    INTERPRETATION,
    LOINC,
    MEDREQUEST_CATEGORY,
    MEDSTATEMENT_CATEGORY,
    OBS_CATEGORY,
    RXNORM,
    SNOMED,
    UCUM,
    coding,
    day,
    moment,
)

BASE_SLUG = "r1-indeterminate-neuropathy"
SERVICE_FOR_HOOK = {"patient-view": "b12-patient-view", "order-sign": "b12-order-sign",
                    "order-select": "b12-order-select"}

# Lab codes the rules read (all are in the `labs` template code list): (code, display, unit, low, high)
RELEVANT_LABS = [
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.5, 15.5),
    ("787-2", "MCV [Entitic volume] by Automated count", "fL", 86.0, 99.0),
    ("98979-8", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or "
                "Blood by Creatinine-based formula (CKD-EPI 2021)", "mL/min/{1.73_m2}", 62.0, 88.0),
    ("2284-8", "Folate [Mass/volume] in Serum or Plasma", "ng/mL", 6.0, 14.0),
]
# Lab / vital-sign codes the rules never read: (code, display, unit, low, high, category)
OTHER_OBS = [
    ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 135, 145, "laboratory"),
    ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.5, 5.1, "laboratory"),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.7, 1.3, "laboratory"),
    ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 70, 140, "laboratory"),
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 5.2, 7.5, "laboratory"),
    ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 10, 45,
     "laboratory"),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 140, 240, "laboratory"),
    ("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "m[IU]/L", 0.5, 4.0, "laboratory"),
    ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 150, 400, "laboratory"),
    ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 4.0, 10.5, "laboratory"),
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 110, 150, "vital-signs"),
    ("8867-4", "Heart rate", "/min", 55, 95, "vital-signs"),
    ("29463-7", "Body weight", "kg", 70, 90, "vital-signs"),
]
OTHER_CONDITIONS = [
    ("38341003", "Hypertensive disorder, systemic arterial"),
    ("55822004", "Hyperlipidemia"),
    ("239873007", "Osteoarthritis of knee"),
    ("235595009", "Gastroesophageal reflux disease"),
    ("40930008", "Hypothyroidism"),
    ("35489007", "Depressive disorder"),
    ("49436004", "Atrial fibrillation"),
    ("195967001", "Asthma"),
    ("414916001", "Obesity"),
    ("267036007", "Dyspnea"),
]
OTHER_MEDS = [  # (rxcui, ingredient, product, sig)
    ("17767", "amlodipine", "Amlodipine 5 mg tablet", "5 mg by mouth once daily"),
    ("83367", "atorvastatin", "Atorvastatin 20 mg tablet", "20 mg by mouth at night"),
    ("29046", "lisinopril", "Lisinopril 10 mg tablet", "10 mg by mouth once daily"),
    ("1191", "aspirin", "Aspirin 81 mg tablet", "81 mg by mouth once daily"),
    ("161", "acetaminophen", "Paracetamol 500 mg tablet", "1 g by mouth up to four times daily as needed"),
    ("10582", "levothyroxine", "Levothyroxine 50 microgram tablet", "50 micrograms by mouth once daily"),
    ("36437", "sertraline", "Sertraline 50 mg tablet", "50 mg by mouth once daily"),
    ("1364430", "apixaban", "Apixaban 5 mg tablet", "5 mg by mouth twice daily"),
    ("4603", "furosemide", "Furosemide 40 mg tablet", "40 mg by mouth in the morning"),
    ("435", "albuterol", "Salbutamol 100 microgram inhaler", "2 puffs inhaled as needed"),
]
OTHER_PROCEDURES = [
    ("73761001", "Colonoscopy"),
    ("54885007", "Extraction of cataract"),
    ("80146002", "Appendectomy"),
    ("387713003", "Surgical procedure"),
]
OTHER_ORDERS = [("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"),
                ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma")]


class Chart:
    """The base fixture patient plus deterministic synthetic history for the same patient."""

    def __init__(self, slug: str = BASE_SLUG, seed: int = 12) -> None:
        self.bundle = load_patient(slug)
        self.patient = next(e["resource"] for e in self.bundle["entry"] if e["resource"]["resourceType"] == "Patient")
        self.pid = self.patient["id"]
        self.ref = {"reference": f"Patient/{self.pid}"}
        self.rng = random.Random(seed)
        self.resources: list[dict[str, Any]] = [copy.deepcopy(e["resource"]) for e in self.bundle["entry"]]
        self._n = 0

    def _id(self, prefix: str) -> str:
        self._n += 1
        return f"{self.pid}-bx{prefix}{self._n}"

    def _days(self, start: int = 60, end: int = 3650) -> int:
        return self.rng.randint(start, end)

    def obs(self, code: str, display: str, unit: str, low: float, high: float, category: str = "laboratory",
            days_ago: int | None = None) -> dict[str, Any]:
        d = self._days() if days_ago is None else days_ago
        value = round(self.rng.uniform(low, high), 1)
        res = {
            "resourceType": "Observation",
            "id": self._id("obs"),
            "status": "final",
            "category": [{"coding": [coding(OBS_CATEGORY, category, category.replace("-", " ").title())]}],
            "code": {"coding": [coding(LOINC, code, display)], "text": display},
            "subject": self.ref,
            "effectiveDateTime": moment(d, 8, 30),
            "issued": moment(d, 15, 10),
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
            "referenceRange": [{"low": {"value": low, "unit": unit, "system": UCUM, "code": unit},
                                "high": {"value": high, "unit": unit, "system": UCUM, "code": unit}}],
            "interpretation": [{"coding": [coding(INTERPRETATION, "N", "Normal")]}],
        }
        self.resources.append(res)
        return res

    def relevant_lab(self) -> dict[str, Any]:
        return self.obs(*self.rng.choice(RELEVANT_LABS), days_ago=self._days(60, 3650))

    def other_obs(self) -> dict[str, Any]:
        return self.obs(*self.rng.choice(OTHER_OBS))

    def condition(self) -> dict[str, Any]:
        code, display = self.rng.choice(OTHER_CONDITIONS)
        onset = self._days(90, 7000)
        status = self.rng.choice(["active", "active", "active", "resolved"])
        res = {
            "resourceType": "Condition",
            "id": self._id("cond"),
            "clinicalStatus": {"coding": [coding(COND_CLINICAL, status, status.capitalize())]},
            "verificationStatus": {"coding": [coding(COND_VERIFICATION, "confirmed", "Confirmed")]},
            "category": [{"coding": [coding(COND_CATEGORY, "problem-list-item", "Problem List Item")]}],
            "code": {"coding": [coding(SNOMED, code, display)], "text": display},
            "subject": self.ref,
            "onsetDateTime": day(onset),
            "recordedDate": day(onset),
        }
        self.resources.append(res)
        return res

    def _med_concept(self) -> tuple[dict[str, Any], str]:
        rxcui, ingredient, product, sig = self.rng.choice(OTHER_MEDS)
        return {"coding": [coding(RXNORM, rxcui, ingredient)], "text": product}, sig

    def medication_request(self) -> dict[str, Any]:
        concept, sig = self._med_concept()
        status = self.rng.choice(["active", "active", "completed", "stopped"])
        res = {
            "resourceType": "MedicationRequest",
            "id": self._id("mr"),
            "status": status,
            "intent": "order",
            "category": [{"coding": [coding(MEDREQUEST_CATEGORY, "outpatient", "Outpatient")]}],
            "medicationCodeableConcept": concept,
            "subject": self.ref,
            "authoredOn": moment(self._days(30, 3650), 11, 0),
            "requester": {"reference": "Practitioner/example"},
            "dosageInstruction": [{"text": sig, "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                                   "route": {"text": "Oral"}}],
        }
        self.resources.append(res)
        return res

    def medication_statement(self) -> dict[str, Any]:
        concept, sig = self._med_concept()
        start = self._days(30, 2000)
        res = {
            "resourceType": "MedicationStatement",
            "id": self._id("ms"),
            "status": "active",
            "category": {"coding": [coding(MEDSTATEMENT_CATEGORY, "community", "Community")]},
            "medicationCodeableConcept": concept,
            "subject": self.ref,
            "effectivePeriod": {"start": day(start)},
            "dateAsserted": moment(start, 10, 0),
            "dosage": [{"text": sig}],
        }
        self.resources.append(res)
        return res

    def procedure(self) -> dict[str, Any]:
        code, display = self.rng.choice(OTHER_PROCEDURES)
        res = {
            "resourceType": "Procedure",
            "id": self._id("proc"),
            "status": "completed",
            "code": {"coding": [coding(SNOMED, code, display)], "text": display},
            "subject": self.ref,
            "performedDateTime": day(self._days(100, 7000)),
        }
        self.resources.append(res)
        return res

    def service_request(self) -> dict[str, Any]:
        code, display = self.rng.choice(OTHER_ORDERS)
        res = {
            "resourceType": "ServiceRequest",
            "id": self._id("sr"),
            "status": "active",
            "intent": "order",
            "code": {"coding": [coding(LOINC, code, display)], "text": display},
            "subject": self.ref,
            "authoredOn": moment(self._days(1, 30), 11, 30),
            "requester": {"reference": "Practitioner/example"},
        }
        self.resources.append(res)
        return res

    def encounter(self) -> dict[str, Any]:
        d = self._days(1, 3650)
        res = {
            "resourceType": "Encounter",
            "id": self._id("enc"),
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB",
                      "display": "ambulatory"},
            "type": [{"coding": [coding(SNOMED, "185349003", "Encounter for check up")]}],
            "subject": self.ref,
            "period": {"start": moment(d, 9, 0), "end": moment(d, 9, 30)},
        }
        self.resources.append(res)
        return res

    def as_bundle(self) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "collection",
                "entry": [{"fullUrl": full_url(r), "resource": r} for r in self.resources]}

    def count(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.resources:
            out[r["resourceType"]] = out.get(r["resourceType"], 0) + 1
        return out


def folate_draft(pid: str) -> dict[str, Any]:
    """A draft folic acid 5 mg daily order, as fixtures.make_fixtures.folate_draft builds it."""
    return {
        "resourceType": "MedicationRequest",
        "id": f"{pid}-bench-draft1",
        "status": "draft",
        "intent": "order",
        "category": [{"coding": [coding(MEDREQUEST_CATEGORY, "outpatient", "Outpatient")]}],
        "medicationCodeableConcept": {"coding": [coding(RXNORM, "4511", "folic acid")],
                                      "text": "Folic acid 5 mg tablet"},
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": moment(0, 11, 0),
        "requester": {"reference": "Practitioner/example"},
        "dosageInstruction": [{"text": "5 mg by mouth once daily",
                               "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                               "route": {"text": "Oral"},
                               "doseAndRate": [{"doseQuantity": {"value": 5, "unit": "mg", "system": UCUM,
                                                                 "code": "mg"}}]}],
    }


def typical_chart() -> Chart:
    """~60 resources: a multimorbid outpatient with a few years of labs, meds and problems."""
    c = Chart()
    for code, display, unit, low, high in RELEVANT_LABS:  # 6 results of each over ~5 years
        for i in range(6 if code != "2284-8" else 3):
            c.obs(code, display, unit, low, high, days_ago=120 + i * 300)
    b12 = ("2132-9", "Cobalamin (Vitamin B12) [Mass/volume] in Serum or Plasma", "pg/mL", 300, 600)
    for d in (700, 1400):  # older normal B12 results
        c.obs(*b12, days_ago=d)
    for _ in range(10):
        c.condition()
    for _ in range(14):
        c.medication_request()
    for _ in range(4):
        c.medication_statement()
    for _ in range(3):
        c.procedure()
    for _ in range(2):
        c.service_request()
    for _ in range(4):  # lab results the `labs` code filter drops (so not in prefetch)
        c.other_obs()
    return c


def heavy_chart(total: int = 2000) -> Chart:
    """~`total` resources, a long multimorbid history: 65% Observations (10% of them read by the rules)."""
    c = Chart()
    target = {"obs_rel": 0.065, "obs_other": 0.585, "cond": 0.06, "mr": 0.18, "ms": 0.03, "proc": 0.04,
              "sr": 0.02}
    make = {"obs_rel": c.relevant_lab, "obs_other": c.other_obs, "cond": c.condition, "mr": c.medication_request,
            "ms": c.medication_statement, "proc": c.procedure, "sr": c.service_request}
    remaining = total - len(c.resources)
    for key, share in target.items():
        for _ in range(round(remaining * share)):
            make[key]()
    while len(c.resources) < total:
        c.other_obs()
    return c


def scaling_chart(total: int, kind: str = "mixed") -> Chart:
    """The base patient (3 resources) + 5 that matter + irrelevant resources up to `total`.

    kind: "mixed" (50% Observations with other LOINC codes, 20% Encounters, 10% each Conditions and
    MedicationRequests with codes the rules do not map, 10% Procedures), or one resource type only.
    """
    c = Chart(seed=total)
    for code, display, unit, low, high in RELEVANT_LABS:
        c.obs(code, display, unit, low, high, days_ago=200)
    c.medication_request()
    makers = {"Observation": c.other_obs, "Encounter": c.encounter, "Condition": c.condition,
              "MedicationRequest": c.medication_request, "Procedure": c.procedure}
    n = total - len(c.resources)
    if kind == "mixed":
        plan = [("Observation", 0.5), ("Encounter", 0.2), ("Condition", 0.1), ("MedicationRequest", 0.1),
                ("Procedure", 0.1)]
        for rt, share in plan:
            for _ in range(int(n * share)):
                makers[rt]()
        while len(c.resources) < total:
            c.other_obs()
    else:
        for _ in range(n):
            makers[kind]()
    return c


def request_honoring(chart: Chart, hook: str, draft_orders: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return build_request(chart.as_bundle(), hook, draft_orders=draft_orders or ())


def request_unfiltered(chart: Chart, hook: str, draft_orders: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Prefetch from an EHR that ignores `code` and `_count`: all Observations (and Encounters) in `labs`."""
    definition = service_definitions()[hook]
    resources = chart.resources
    body = build_request({"resourceType": "Bundle", "entry": [{"resource": chart.patient}]}, hook,
                         draft_orders=draft_orders or ())
    for key, spec in definition["prefetch"].items():
        template = spec["template"] if isinstance(spec, dict) else spec
        resource_type, _, params = template.partition("?")
        if not params:
            continue
        kept = [p for p in params.split("&") if p.split("=", 1)[0] in ("patient", "status")]
        rendered = f"{resource_type}?{'&'.join(kept)}".replace("{{context.patientId}}", chart.pid)
        bundle = run_template(rendered, resources, chart.pid,
                              bundle_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench.{chart.pid}.{key}")))
        if resource_type == "Observation":
            included = [{"fullUrl": full_url(r), "resource": r, "search": {"mode": "include"}}
                        for r in resources if r["resourceType"] == "Encounter"]
            if included:
                bundle.setdefault("entry", []).extend(included)
        body["prefetch"][key] = bundle
    return body


def prefetch_resource_count(body: dict[str, Any]) -> int:
    n = 0
    for value in (body.get("prefetch") or {}).values():
        if isinstance(value, dict) and value.get("resourceType") == "Bundle":
            n += len(value.get("entry", []))
        elif value is not None:
            n += 1
    return n


@dataclass
class Workload:
    name: str
    method: str
    path: str
    body: bytes | None
    resources: int  # prefetch resources in the request
    note: str = ""
    expect_cards: int | None = None


def dumps(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def build_workloads(fhir_base: str | None = None, fhir_token: str | None = None) -> dict[str, Workload]:
    typical = typical_chart()
    heavy = heavy_chart()
    pv = "/cds-services/b12-patient-view"
    out = {}
    out["discovery"] = Workload("discovery", "GET", "/cds-services", None, 0, "GET /cds-services")
    body = request_honoring(typical, "patient-view")
    out["typical"] = Workload("typical", "POST", pv, dumps(body), prefetch_resource_count(body),
                              "patient-view, prefetch as the templates return it")
    body = request_unfiltered(heavy, "patient-view")
    out["heavy"] = Workload("heavy", "POST", pv, dumps(body), prefetch_resource_count(body),
                            "patient-view, unfiltered prefetch (EHR ignores code/_count)")
    body = request_honoring(typical, "order-sign", [folate_draft(typical.pid)])
    out["order-sign"] = Workload("order-sign", "POST", "/cds-services/b12-order-sign", dumps(body),
                                 prefetch_resource_count(body), "typical chart + draft folic acid 5 mg")
    if fhir_base:
        body = request_honoring(typical, "patient-view")
        del body["prefetch"]
        body["fhirServer"] = fhir_base
        body["fhirAuthorization"] = {"access_token": fhir_token, "token_type": "Bearer", "expires_in": 300,
                                     "scope": "patient/*.read", "subject": "bench-client",
                                     "patient": typical.pid}
        out["no-prefetch"] = Workload("no-prefetch", "POST", pv, dumps(body), 0,
                                      "typical chart fetched from local sekmet-fhir (6 searches)")
    return out


def typical_collection() -> dict[str, Any]:
    """The typical chart as a collection Bundle, to load into the FHIR server."""
    return typical_chart().as_bundle()


if __name__ == "__main__":
    for name, w in build_workloads("http://127.0.0.1:1/fhir", "t").items():
        print(f"{name:12s} {w.method} {w.path} resources={w.resources} bytes={len(w.body or b'')}")
    print("typical chart", typical_chart().count())
    print("heavy chart", heavy_chart().count())

"""The four prefetch states are told apart, and only 'unknown' data triggers fetch or 412."""

from __future__ import annotations

import pytest

from cds_service.errors import InvalidFhirResource, PreconditionFailed
from cds_service.fhir.prefetch import (
    Fetched,
    FetchUnavailable,
    PrefetchState,
    classify_prefetch_value,
    gather_inputs,
)
from cds_service.protocol.services import PrefetchSpec
from tests.support.fhir import b12_observation, empty_searchset, searchset

LABS = PrefetchSpec("labs", "Observation?patient={{context.patientId}}", True, "labs")
PROCS = PrefetchSpec("procedures", "Procedure?patient={{context.patientId}}", False, "procedures")
OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}


@pytest.mark.parametrize(
    ("value", "state"),
    [
        (searchset(b12_observation(150)), PrefetchState.PRESENT),
        ({"resourceType": "Patient", "id": "p1"}, PrefetchState.PRESENT),
        (None, PrefetchState.NO_DATA),
        (empty_searchset(), PrefetchState.NO_DATA),
        (OUTCOME, PrefetchState.ERROR),
    ],
)
def test_prefetch_states(value, state):
    assert classify_prefetch_value("labs", value).state is state


def test_search_warning_entries_are_not_data():
    bundle = searchset(OUTCOME)
    assert classify_prefetch_value("labs", bundle).state is PrefetchState.NO_DATA


def test_bundle_with_next_link_is_incomplete():
    bundle = searchset(b12_observation(150))
    bundle["link"] = [{"relation": "next", "url": "https://ehr.example.org/fhir/Observation?page=2"}]
    assert classify_prefetch_value("labs", bundle).incomplete


@pytest.mark.parametrize("value", ["text", 3, [], {"entry": []}, {"resourceType": "Bundle", "entry": [{"x": 1}]}])
def test_malformed_prefetch_values_are_refused(value):
    with pytest.raises(InvalidFhirResource):
        classify_prefetch_value("labs", value)


def test_missing_required_key_is_fetched_when_a_fetcher_exists():
    fetched = [b12_observation(300)]
    gathered = gather_inputs([LABS], {}, lambda specs: {s.key: Fetched(fetched) for s in specs})
    assert gathered.resources == fetched
    assert gathered.states["labs"] is PrefetchState.MISSING


def test_error_key_is_fetched_not_treated_as_no_data():
    calls = []

    def record(specs):
        calls.extend(s.key for s in specs)
        return {s.key: Fetched([]) for s in specs}

    gather_inputs([LABS], {"labs": OUTCOME}, record)
    assert calls == ["labs"]


def test_no_data_is_never_refetched():
    def fail(specs):
        raise AssertionError("must not fetch")

    gathered = gather_inputs([LABS], {"labs": None}, fail)
    assert gathered.resources == [] and gathered.unavailable == ()


def test_unobtainable_required_key_is_412_and_optional_is_reported_unavailable():
    def unreachable(specs):
        return {s.key: FetchUnavailable("server down") for s in specs}

    gathered = gather_inputs([LABS, PROCS], {}, unreachable)
    with pytest.raises(PreconditionFailed) as err:
        gathered.require_complete()
    assert err.value.status == 412 and "'labs'" in err.value.message and "server down" in err.value.message
    gathered = gather_inputs([LABS, PROCS], {"labs": empty_searchset()}, unreachable)
    assert gathered.unavailable == ("procedures",)


def test_partial_page_is_used_and_flagged_when_next_page_cannot_be_fetched():
    bundle = searchset(b12_observation(150))
    bundle["link"] = [{"relation": "next", "url": "https://ehr.example.org/fhir/Observation?page=2"}]
    gathered = gather_inputs([LABS], {"labs": bundle}, None)
    assert len(gathered.resources) == 1
    assert gathered.unavailable == ("labs",)


def test_truncated_fetch_is_used_and_flagged():
    gathered = gather_inputs([LABS], {}, lambda specs: {"labs": Fetched([b12_observation(300)], complete=False)})
    assert len(gathered.resources) == 1 and gathered.unavailable == ("labs",)

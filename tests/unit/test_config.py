"""Configuration is validated at start-up with messages naming the variable."""

from __future__ import annotations

import json

import pytest

from cds_service.config import ConfigError, load_settings


def test_defaults_are_development_with_sqlite():
    s = load_settings(environ={})
    assert s.env == "development" and s.database_url.startswith("sqlite:///")


def test_environment_variables_are_read():
    s = load_settings(environ={"CDS_MAX_BODY_BYTES": "4096", "CDS_CORS_ORIGINS": "https://a.example"})
    assert s.max_body_bytes == 4096 and s.cors_origins == ("https://a.example",)


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({"CDS_MAX_BODY_BYTES": "lots"}, "CDS_MAX_BODY_BYTES"),
        ({"CDS_MAX_BODY_BYTES": "10"}, "CDS_MAX_BODY_BYTES"),
        ({"CDS_ENV": "staging"}, "CDS_ENV"),
        ({"CDS_DATABASE_URL": "mysql://x"}, "CDS_DATABASE_URL"),
        ({"CDS_EVALUATION_TIME": "yesterday"}, "CDS_EVALUATION_TIME"),
        ({"CDS_EVALUATION_TIME": "2026-11-01T12:00:00"}, "time zone"),
        ({"CDS_HOOKS_DIR": "/no/such/dir"}, "CDS_HOOKS_DIR"),
        ({"CDS_TESTING": "maybe"}, "CDS_TESTING"),
        ({"CDS_ENV": "production"}, "CDS_CORS_ORIGINS"),
        ({"CDS_ENV": "production", "CDS_CORS_ORIGINS": "https://ehr.example.org",
          "CDS_EVALUATION_TIME": "2026-11-01T12:00:00Z"}, "CDS_EVALUATION_TIME"),
    ],
)
def test_bad_values_name_the_variable(environ, fragment):
    with pytest.raises(ConfigError, match=fragment):
        load_settings(environ=environ)


def test_unknown_override_key_is_refused():
    with pytest.raises(ConfigError, match="DATABSE_URL"):
        load_settings({"DATABSE_URL": "sqlite:///x.db"}, environ={})


def test_site_threshold_override_changes_the_outcome(tmp_path):
    """A site that uses 148 pmol/L (BSH 2014 working cut-off) as the deficiency threshold."""
    import json

    from cds_service import create_app
    from tests.support.fhir import b12_observation, patient_view_request, searchset

    body = json.dumps(patient_view_request(labs=searchset(b12_observation(140, "pmol/L", code="14685-2"))))
    def topics(**extra):
        app = create_app({"TESTING": True, "EVALUATION_TIME": "2026-11-01T12:00:00Z",
                          "DATABASE_URL": f"sqlite:///{tmp_path}/{len(extra)}.db", **extra})
        response = app.test_client().post("/cds-services/b12-patient-view", data=body,
                                          content_type="application/json")
        return [c["source"]["topic"]["code"] for c in response.get_json()["cards"]]

    assert "b12-untreated" not in topics()  # 140 pmol/L is indeterminate by default (133-258)
    assert "b12-untreated" in topics(THRESHOLD_OVERRIDES="b12-total.deficient-below=148")


@pytest.mark.parametrize(("text", "fragment"), [("nope.key=1", "unknown threshold"), ("b12-total.x", "key=number")])
def test_bad_threshold_override_names_the_variable(tmp_path, text, fragment):
    from cds_service import create_app

    with pytest.raises(ConfigError, match=f"CDS_THRESHOLD_OVERRIDES.*{fragment}"):
        create_app({"TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/t.db", "THRESHOLD_OVERRIDES": text})


def test_leucovorin_exclusion_is_a_site_switch(tmp_path):
    from cds_service import create_app
    from fixtures.build_requests import load_scenarios, request_for_scenario

    scenario = next(s for s in load_scenarios()
                    if s["patient"] == "r2-leucovorin-methotrexate" and s["hook"] == "patient-view")
    body = json.dumps(request_for_scenario(scenario))

    def topics(name, **extra):
        app = create_app({"TESTING": True, "EVALUATION_TIME": "2026-11-01T12:00:00Z",
                          "DATABASE_URL": f"sqlite:///{tmp_path}/{name}.db", **extra})
        response = app.test_client().post("/cds-services/b12-patient-view", data=body,
                                          content_type="application/json")
        return [c["source"]["topic"]["code"] for c in response.get_json()["cards"]]

    assert topics("default") == []
    assert topics("switched", THRESHOLD_OVERRIDES="policy.exclude-leucovorin=0") == ["folate-without-b12"]

"""jti replay protection on both databases: first use passes, any second use (any instance) fails."""

from __future__ import annotations

from cds_service.security.replay import ReplayGuard
from cds_service.storage.db import make_engine


def test_replay_is_detected_across_two_guards_sharing_one_database(database_url):
    first_instance = ReplayGuard(make_engine(database_url))
    second_instance = ReplayGuard(make_engine(database_url))
    assert first_instance.first_use("https://ehr.example.org", "jti-1", 2_000_000_000, 1_700_000_000) is True
    assert second_instance.first_use("https://ehr.example.org", "jti-1", 2_000_000_000, 1_700_000_000) is False
    assert second_instance.first_use("https://ehr.example.org", "jti-2", 2_000_000_000, 1_700_000_000) is True
    assert first_instance.first_use("https://other.example.org", "jti-1", 2_000_000_000, 1_700_000_000) is True

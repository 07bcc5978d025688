"""`b12-cds serve` (gunicorn) keeps answering across worker restarts."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request

from tests.support.fhir import patient_view_request
from tests.support.server import start_server, stop_server


def post_status(base: str) -> int:
    request = urllib.request.Request(f"{base}/cds-services/b12-patient-view",
                                     data=json.dumps(patient_view_request()).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_requests_succeed_after_the_workers_are_recycled(tmp_path):
    """A worker's exit must not remove the master's metrics directory (it once did: 500s after HUP)."""
    process, base = start_server(tmp_path, workers=1)
    try:
        assert post_status(base) == 200
        process.send_signal(signal.SIGHUP)  # gunicorn: reload, i.e. replace every worker
        deadline = time.monotonic() + 15
        statuses = []
        time.sleep(1.0)  # let the old worker exit and the new one start
        while time.monotonic() < deadline and len(statuses) < 5:
            try:
                statuses.append(post_status(base))
            except OSError:
                time.sleep(0.2)
        assert statuses and all(s == 200 for s in statuses), statuses
    finally:
        stop_server(process)


def test_warm_up_evaluates_every_service_and_records_nothing(app):
    from cds_service.reporting import build_report
    from cds_service.warmup import warm_up

    state = app.extensions["b12_cds"]
    assert warm_up(state.knowledge, state.engine, state.services) >= 1
    assert build_report(state.db).rows == []

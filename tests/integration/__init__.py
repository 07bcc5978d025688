"""Real components started on 127.0.0.1: sekmet-fhir, PostgreSQL, `b12-cds serve` (gunicorn), hadolint."""

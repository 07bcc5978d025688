"""Performance benchmark of the CDS service against a Flask + gunicorn floor (docs/performance.md)."""

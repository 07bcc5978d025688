"""Through the Flask app (test client): the API, scenarios, OpenAPI, schemathesis, alert fatigue, explain pages."""

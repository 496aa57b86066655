"""`/healthz` reports the database and the broker, and fails loudly when one is down."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_health_reports_a_down_broker_as_503(client: FlaskClient):
    # The test settings point the broker at a closed port.
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json["database"] == "ok"
    assert response.json["broker"].startswith("error")

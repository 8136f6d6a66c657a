"""The app boots in every mode; the probes tell what is reachable."""
import secrets

import pytest

from newsletter import create_app
from tests.support.net import free_port


@pytest.mark.parametrize("mode", ["development", "testing", "production"])
def test_app_factory_boots_in_every_mode(platform_env, monkeypatch, mode):
    monkeypatch.setenv("NEWSLETTER_ENV", mode)
    monkeypatch.setenv("SECRET_KEY", secrets.token_urlsafe(48))
    app = create_app()
    assert app.config["ENV_NAME"] == mode
    assert "celery" in app.extensions
    assert app.test_client().get("/healthz").json == {"status": "ok"}


def test_readyz_is_200_when_everything_is_reachable(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json == {"status": "ok", "checks": {"database": "ok", "broker": "ok", "redis": "ok"}}


def test_readyz_is_503_naming_the_broker_when_it_is_down(platform_env, monkeypatch):
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://127.0.0.1:{free_port()}/0")
    app = create_app()
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["status"] == "unavailable"
    assert response.json["down"] == ["broker"]
    assert response.json["checks"]["broker"].startswith("down: ")
    assert response.json["checks"]["database"] == "ok"


def test_readyz_names_the_database_when_it_is_down(platform_env, tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/missing-dir/x.db"})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["down"] == ["database"]

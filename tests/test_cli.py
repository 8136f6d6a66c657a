"""The flask CLI commands, run as a user runs them."""
from newsletter.services.accounts import api_keys
from tests.support.processes import flask_cli
from tests.support.web import login


def test_create_admin_then_sign_in(app, client):
    result = flask_cli("create-admin", "--email", "Boss@Example.com", "--password", "a long password")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Created admin boss@example.com"
    assert login(client, "boss@example.com", "a long password").status_code == 302
    # Running it again resets the password instead of failing.
    again = flask_cli("create-admin", "--email", "boss@example.com", "--password", "another long one")
    assert again.stdout.strip() == "Updated admin boss@example.com"


def test_create_admin_rejects_bad_input_naming_the_option(app):
    short = flask_cli("create-admin", "--email", "a@example.com", "--password", "short")
    assert short.returncode == 2 and "--password" in short.stderr and "10 characters" in short.stderr
    bad = flask_cli("create-admin", "--email", "not-an-email", "--password", "a long password")
    assert bad.returncode == 2 and "--email" in bad.stderr
    assert "Traceback" not in short.stderr + bad.stderr


def test_api_key_is_printed_alone_on_the_last_line_and_stored_hashed(app):
    result = flask_cli("api-keys", "create", "--name", "billing app")
    assert result.returncode == 0, result.stderr
    raw = result.stdout.strip().splitlines()[-1]
    assert raw.startswith("nl_") and len(raw) > 40 and " " not in raw
    with app.app_context():
        key = api_keys.authenticate(raw)
        assert key is not None and key.name == "billing app" and key.last_used_at is not None
        assert raw not in (key.key_hash, key.prefix)
        assert api_keys.authenticate(raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
        api_keys.revoke(key.id)
        assert api_keys.authenticate(raw) is None
    listing = flask_cli("api-keys", "list")
    assert "billing app" in listing.stdout and "revoked" in listing.stdout and raw not in listing.stdout


def test_api_key_role_is_chosen_on_the_command_line(app):
    from newsletter.models import Role

    result = flask_cli("api-keys", "create", "--name", "reporting", "--role", "viewer")
    assert result.returncode == 0, result.stderr
    # Only the key goes to stdout (the note goes to stderr), so `$(flask ... api-keys create ...)` works.
    assert len(result.stdout.splitlines()) == 1
    with app.app_context():
        assert api_keys.authenticate(result.stdout.strip()).role is Role.VIEWER
    wrong = flask_cli("api-keys", "create", "--name", "x", "--role", "owner")
    blank = flask_cli("api-keys", "create", "--name", "  ")
    assert wrong.returncode == 2 and "--role" in wrong.stderr and "viewer" in wrong.stderr
    assert blank.returncode == 2 and "--name" in blank.stderr
    assert "Traceback" not in wrong.stderr + blank.stderr


def test_check_command_reports_each_dependency(app):
    result = flask_cli("check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["database:", "ok", "broker:", "ok", "redis:", "ok"]

"""Flask CLI commands: `flask --app wsgi create-admin`, `api-keys create`, `check`."""
from __future__ import annotations

import sys

import click
from flask import Flask
from flask.cli import AppGroup

from .models import Role
from .services import health
from .services.accounts import api_keys, users
from .startup import redact

ROLE_CHOICE = click.Choice([role.value for role in Role])


def register(app: Flask) -> None:
    app.cli.add_command(create_admin)
    app.cli.add_command(keys)
    app.cli.add_command(check)


@click.command("create-admin")
@click.option("--email", required=True, help="The admin's email (the login).")
@click.option("--password", required=True,
              help=f"At least {users.MIN_PASSWORD_LENGTH} characters, not a common or patterned password.")
def create_admin(email: str, password: str) -> None:
    """Create an admin user, or reset an existing user to admin with this password."""
    try:
        user, created = users.create_or_reset_admin(email, password)
    except users.AccountError as exc:
        raise click.BadParameter(str(exc), param_hint=f"--{exc.field}") from None
    click.echo(f"{'Created' if created else 'Updated'} admin {user.email}")


keys = AppGroup("api-keys", help="Create, list and revoke API keys.")


@keys.command("create")
@click.option("--name", required=True, help="What the key is for.")
@click.option("--role", type=ROLE_CHOICE, default=Role.MARKETER.value, show_default=True)
def create_key(name: str, role: str) -> None:
    """Create a key and print it alone on the last line (it is never shown again)."""
    try:
        key, raw = api_keys.create_api_key(name, Role(role))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--name") from None
    click.echo(f"Created API key #{key.id} {key.name!r} ({key.role.value}); store it now:", err=True)
    click.echo(raw)


@keys.command("list")
def list_keys() -> None:
    """List keys (prefix, role, last use); the secrets themselves are not stored."""
    for key in api_keys.list_keys():
        state = "revoked" if key.revoked_at else "active"
        click.echo(f"{key.id}\t{key.prefix}…\t{key.role.value}\t{state}\t{key.name}\t"
                   f"{key.last_used_at or 'never used'}")


@keys.command("revoke")
@click.argument("key_id", type=int)
def revoke_key(key_id: int) -> None:
    """Revoke a key by id."""
    if api_keys.revoke(key_id) is None:
        raise click.BadParameter(f"no API key with id {key_id}", param_hint="KEY_ID")
    click.echo(f"Revoked API key #{key_id}")


@click.command("check")
def check() -> None:
    """Check that the database, broker and Redis are reachable (exit 1 if not)."""
    from flask import current_app

    urls = {
        "database": current_app.config["SQLALCHEMY_DATABASE_URI"],
        "broker": current_app.config["CELERY"]["broker_url"],
        "redis": current_app.config["REDIS_URL"],
    }
    failed = False
    for name, reason in health.readiness().items():
        if reason:
            failed = True
            click.echo(f"newsletter: {name} is down ({redact(urls[name])}): {reason}", err=True)
        else:
            click.echo(f"{name}: ok")
    sys.exit(1 if failed else 0)

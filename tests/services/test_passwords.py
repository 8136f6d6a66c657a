"""Password strength rules, applied wherever a password is set (the web pages are tested in
tests/web/test_users.py)."""
import pytest

from newsletter.models import Role
from newsletter.services.accounts import passwords, users
from tests.conftest import ADMIN_PASSWORD


@pytest.mark.parametrize("password", [
    ADMIN_PASSWORD, "long enough password", "a long password", "Tr0ub4dor&3xyz", "blue 42 river 9 sky",
])
def test_passwords_people_remember_but_nobody_guesses_first_are_accepted(password):
    assert passwords.problem(password, "ana@example.com", "Ana Lima") is None


@pytest.mark.parametrize("password, why", [
    ("short", "at least 10"),
    ("x" * 201, "at most 200"),
    ("aaaaaaaaaa", "repeated or sequential"),
    ("abababababab", "repeated or sequential"),
    ("passwordpassword", "repeated or sequential"),
    ("abcdefghijkl", "repeated or sequential"),
    ("9876543210", "repeated or sequential"),
    ("zxcvbnm,./1", "most common"),  # a keyboard row with a digit after it
    ("1qaz2wsx3edc", "repeated or sequential"),
    ("baseball123", "most common"),
    ("Summer2024!!", "most common"),
    ("!!dragon!!!!", "most common"),
    ("superman12345", "most common"),
    ("lima beans forever", "email address or name"),
    ("my-ana.lima-pass", "email address or name"),
])
def test_weak_passwords_are_refused_with_the_reason(password, why):
    assert why in str(passwords.problem(password, "ana.lima@example.com", "Ana Lima"))


def test_the_common_list_is_the_shipped_one():
    common = passwords.common_passwords()
    assert len(common) > 19000 and {"123456", "password", "qwerty"} <= common


def test_the_cli_admin_command_refuses_a_weak_password_and_changes_nothing(app):
    with app.app_context():
        user = users.create_user("boss@example.com", "long enough password", Role.MARKETER)
        with pytest.raises(users.AccountError, match="repeated or sequential") as error:
            users.create_or_reset_admin("boss@example.com", "aaaaaaaaaaaa")
        assert error.value.field == "password"
        assert users.find_by_email("boss@example.com").role is Role.MARKETER
        with pytest.raises(users.AccountError, match="most common"):
            users.create_or_reset_admin("new@example.com", "password1234")
        assert users.find_by_email("new@example.com") is None
        assert user.id


def test_generated_passwords_pass_the_rules(app):
    for _ in range(200):
        assert passwords.problem(users.generate_password("admin@example.com", "Admin"), "admin@example.com") is None

import pytest
from django.core.exceptions import ImproperlyConfigured

from vault.env import env_bool, env_choice, env_int, env_list, env_secret, env_str


def test_defaults_apply_when_unset():
    assert env_str("X", "d", environ={}) == "d"
    assert env_bool("X", True, environ={}) is True
    assert env_int("X", 7, environ={}) == 7
    assert env_list("X", ["a"], environ={}) == ["a"]


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("yes", True), ("ON", True), ("0", False), ("off", False)])
def test_bool_values(raw, expected):
    assert env_bool("X", not expected, environ={"X": raw}) is expected


@pytest.mark.parametrize(
    ("reader", "raw", "message"),
    [
        (lambda e: env_bool("FLAG", False, environ=e), "maybe", "FLAG must be a boolean"),
        (lambda e: env_int("PORT", 1, environ=e), "eighty", "PORT must be an integer"),
        (lambda e: env_int("PORT", 1, minimum=1, environ=e), "0", "PORT must be at least 1"),
        (lambda e: env_choice("MODE", "a", ("a", "b"), environ=e), "c", "MODE must be one of a, b"),
    ],
)
def test_bad_values_name_the_variable(reader, raw, message):
    name = message.split()[0]
    with pytest.raises(ImproperlyConfigured, match=message):
        reader({name: raw})


def test_list_drops_blank_items():
    assert env_list("HOSTS", [], environ={"HOSTS": " a.example, ,b.example,"}) == ["a.example", "b.example"]


def test_secret_file_wins_over_variable(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    environ = {"TOKEN": "from-env", "TOKEN_FILE": str(secret)}
    assert env_secret("TOKEN", environ=environ) == "from-file"
    assert env_secret("TOKEN", environ={"TOKEN": "from-env"}) == "from-env"


def test_unreadable_secret_file_is_a_clear_error(tmp_path):
    with pytest.raises(ImproperlyConfigured, match="TOKEN_FILE points to"):
        env_secret("TOKEN", environ={"TOKEN_FILE": str(tmp_path / "missing")})

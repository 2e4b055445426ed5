"""`fedirelay accounts ...` and `fedirelay migrate` on a real database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.cli.commands import app
from service.runtime.settings import get_settings


@pytest.fixture
def cli(database, monkeypatch):
    monkeypatch.setenv("FEDIRELAY_DATABASE_URL", database.url)
    monkeypatch.setenv("FEDIRELAY_BASE_URL", "https://news.example.com")
    get_settings.cache_clear()
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), input=input)

    yield invoke
    get_settings.cache_clear()


def test_create_prints_the_fediverse_address(cli):
    result = cli("accounts", "create", "releases", "--name", "Releases", "--type", "Organization")
    assert result.exit_code == 0, result.output
    assert "@releases@news.example.com" in result.output
    assert "https://news.example.com/users/releases" in result.output


def test_create_with_json_output_has_both_keys(cli):
    result = cli("accounts", "create", "blog", "--json")
    body = json.loads(result.output)
    assert sorted(k["kind"] for k in body["keys"]) == ["ed25519", "rsa"]


def test_create_rejects_a_bad_handle_with_exit_code_2(cli):
    result = cli("accounts", "create", "Not Valid")
    assert result.exit_code == 2
    assert "handle" in result.output


def test_create_rejects_a_duplicate(cli):
    cli("accounts", "create", "blog")
    result = cli("accounts", "create", "blog")
    assert result.exit_code == 1
    assert "already exists" in result.output


def test_list_shows_created_accounts(cli):
    cli("accounts", "create", "blog")
    cli("accounts", "create", "releases")
    result = cli("accounts", "list", "--json")
    assert [a["handle"] for a in json.loads(result.output)] == ["blog", "releases"]


def test_update_changes_profile_fields(cli):
    cli("accounts", "create", "blog")
    result = cli("accounts", "update", "blog", "--field", "Web=https://example.com", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["profile_fields"] == [
        {"name": "Web", "value": "https://example.com"}
    ]


def test_update_rejects_an_invalid_actor_type(cli):
    cli("accounts", "create", "blog")
    result = cli("accounts", "update", "blog", "--type", "Robot")
    assert result.exit_code == 2


def test_show_of_unknown_account_fails(cli):
    result = cli("accounts", "show", "nobody")
    assert result.exit_code == 1
    assert "no account" in result.output


def test_rotate_keys_retires_the_old_keys(cli):
    cli("accounts", "create", "blog")
    result = cli("accounts", "rotate-keys", "blog", "--json")
    keys = json.loads(result.output)["keys"]
    assert sum(1 for k in keys if k["retired_at"] is None) == 2
    assert sum(1 for k in keys if k["retired_at"] is not None) == 2


def test_delete_needs_confirmation(cli):
    cli("accounts", "create", "blog")
    result = cli("accounts", "delete", "blog", input="n\n")
    assert result.exit_code == 1
    assert cli("accounts", "show", "blog").exit_code == 0


def test_delete_with_yes_removes_the_account(cli):
    cli("accounts", "create", "blog")
    assert cli("accounts", "delete", "blog", "--yes").exit_code == 0
    assert cli("accounts", "show", "blog").exit_code == 1


def test_private_keys_never_appear_in_cli_output(cli):
    created = cli("accounts", "create", "blog", "--json").output
    shown = cli("accounts", "show", "blog", "--json").output
    assert "PRIVATE KEY" not in created + shown


def test_migrate_command_creates_a_fresh_database(tmp_path: Path):
    env = {
        "PATH": "/usr/bin:/bin",
        "FEDIRELAY_DATA_DIR": str(tmp_path),
    }
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fedirelay.db").exists()

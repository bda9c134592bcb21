"""``chaos-service token``: a secret shown once, stored hashed, listed without it, revocable.

The command runs in-process (``main(argv)``), as its console script does."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from chaos_service.cli.main import main
from chaos_service.control.store import open_store


def token(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``chaos-service token ARGS``."""
    try:
        code = main(["token", *args])
    except SystemExit as exit_:  # argparse refusing the arguments
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def found_role(store: Path, secret: str) -> str | None:
    async def find() -> str | None:
        opened = await open_store(store)
        try:
            record = await opened.find_token(secret)
            return None if record is None else record.role
        finally:
            await opened.close()

    return asyncio.run(find())


def test_create_list_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = str(tmp_path / "control.db")
    code, out, err = token(capsys, "create", "ci", "--role", "operator", "--store", store)
    assert code == 0, err
    heading, secret = out.splitlines()
    token_id = heading.split()[1]
    assert heading == f"token {token_id} for ci (operator):" and secret.startswith("cst_")
    assert "shown only now" in err
    assert found_role(Path(store), secret) == "operator"
    assert secret.encode() not in Path(store).read_bytes()  # only its hash is kept

    code, out, _ = token(capsys, "list", "--store", store)
    assert code == 0 and token_id in out and "active" in out and secret not in out

    assert token(capsys, "revoke", token_id, "--store", store)[0] == 0
    assert found_role(Path(store), secret) is None
    code, _, err = token(capsys, "revoke", token_id, "--store", store)
    assert code == 1 and f"no active token {token_id!r}" in err
    assert "revoked" in token(capsys, "list", "--store", store)[1]
    with sqlite3.connect(store) as db:
        audit = db.execute("SELECT action, target, actor FROM audit_log ORDER BY id").fetchall()
    assert [(action, target) for action, target, _ in audit] == [("token.create", token_id), ("token.revoke", token_id)]
    assert all(actor.startswith("cli:") for _, _, actor in audit)


def test_bad_input_exits_2_with_a_message_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "control.db"
    code, _, err = token(capsys, "create", "x", "--role", "root", "--store", str(store))
    assert code == 2 and "invalid choice: 'root'" in err
    assert not store.exists()
    code, _, err = token(capsys, "list", "--store", "mysql://db/chaos")
    assert code == 2 and "must be SQLite or Postgres" in err and "Traceback" not in err

"""Bearer tokens and roles: who may do what, and what they are told when they may not."""

from __future__ import annotations

import pytest

from chaos_service.control.auth import AuthError, bearer_secret, require_role


def test_the_secret_comes_from_a_bearer_header() -> None:
    assert bearer_secret("Bearer cst_abc") == "cst_abc"
    assert bearer_secret("  bearer   cst_abc ") == "cst_abc"


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing bearer token"),
        ("", "missing bearer token"),
        ("Basic dXNlcjpwdw==", "malformed Authorization header"),
        ("Bearer ", "malformed Authorization header"),
    ],
)
def test_no_usable_bearer_token_is_a_401_saying_why(header: str | None, message: str) -> None:
    with pytest.raises(AuthError) as caught:
        bearer_secret(header)
    assert caught.value.status == 401 and message in str(caught.value)


@pytest.mark.parametrize(
    ("role", "required", "allowed"),
    [
        ("admin", "operator", True),
        ("operator", "operator", True),
        ("viewer", "viewer", True),
        ("viewer", "operator", False),
        ("operator", "admin", False),
        ("root", "viewer", False),
    ],
)
def test_roles_are_ordered_viewer_operator_admin(role: str, required: str, allowed: bool) -> None:
    if allowed:
        require_role(role, required)
        return
    with pytest.raises(AuthError) as caught:
        require_role(role, required)
    assert caught.value.status == 403
    assert str(caught.value) == f"this needs the {required} role; the token has {role}"

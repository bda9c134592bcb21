"""``chaos-service token create | list | revoke``: the control plane's bearer tokens.

A token's secret is shown once, when it is created; the store keeps only its hash.
The store is ``--store`` (a file path, ``sqlite:///…`` or ``postgresql://…``), else
$CHAOS_STORE, else ``.chaos/control.db``. Exit codes: 0 done, 1 no such token, 2 bad input.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from pathlib import Path

from chaos_service.errors import InvalidInput

DEFAULT_STORE = Path(".chaos") / "control.db"
STORE_VARIABLE = "CHAOS_STORE"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from chaos_service.control.auth import ROLES

    parser = commands.add_parser("token", help="create, list and revoke control-plane tokens", description=__doc__)
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a token and print its secret once")
    create.add_argument("name", help="who or what the token is for (e.g. ci, alice)")
    create.add_argument("--role", choices=ROLES, default="viewer", help="what it may do (default viewer)")
    listing = actions.add_parser("list", help="every token, without secrets")
    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("id")
    for action in (create, listing, revoke):
        action.add_argument("--store", help=f"the store (default ${STORE_VARIABLE}, else {DEFAULT_STORE})")
    parser.set_defaults(handler=run)


def store_location(given: str | None) -> str:
    location = given or os.environ.get(STORE_VARIABLE) or str(DEFAULT_STORE)
    if "://" not in location:
        Path(location).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return location


def run(args: argparse.Namespace) -> int:
    from chaos_service.runtime import run_async

    try:
        return run_async(_act(args))
    except InvalidInput as exc:
        print(f"chaos-service token: {exc}", file=sys.stderr)
        return 2


async def _act(args: argparse.Namespace) -> int:
    from chaos_service.control.store import open_store

    store = await open_store(store_location(args.store), replica="cli")
    actor = f"cli:{getpass.getuser()}"
    try:
        if args.action == "create":
            record, secret = await store.create_token(args.name, args.role)
            await store.audit(actor, "token.create", record.id, name=record.name, role=record.role)
            print(f"token {record.id} for {record.name} ({record.role}):\n{secret}")
            print("the secret is shown only now: keep it somewhere safe", file=sys.stderr)
            return 0
        if args.action == "list":
            for record, created, revoked in await store.list_tokens():
                state = f"revoked {_when(revoked)}" if revoked is not None else "active"
                print(f"{record.id}  {record.name:<20} {record.role:<8}  created {_when(created)}  {state}")
            return 0
        if not await store.revoke_token(args.id):
            print(f"chaos-service token: no active token {args.id!r}", file=sys.stderr)
            return 1
        await store.audit(actor, "token.revoke", args.id)
        print(f"token {args.id} revoked")
        return 0
    finally:
        await store.close()


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))

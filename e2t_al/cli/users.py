"""``e2t-al users``: people who use the web app and the API."""

from __future__ import annotations

from typing import Optional

import typer

from e2t_al.cli.common import URL_HELP, console, store


users_app = typer.Typer(help="People who use the web app and the API: add, list, make an API token.", no_args_is_help=True)


@users_app.command("add")
def users_add(username: str = typer.Argument(..., help="sign-in name"),
              role: str = typer.Option(..., help="viewer | experimentalist | reviewer | admin"),
              password: Optional[str] = typer.Option(None, envvar="E2T_AL_PASSWORD",
                                                     help="at least 10 characters; asked for when not given"),
              url: Optional[str] = typer.Option(None, help=URL_HELP)):
    """Add a user (the first one is usually the admin: `e2t-al users add alice --role admin`)."""
    from db import accounts

    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    with store(url) as session:
        accounts.create_user(session, accounts.UserIn(username=username, role=role, password=password), actor="cli")
    console.print(f"user {username} ({role}) added")



@users_app.command("list")
def users_list(url: Optional[str] = typer.Option(None, help=URL_HELP)):
    from db import accounts

    with store(url) as session:
        for user in accounts.list_users(session):
            console.print(f"{user.username}\t{user.role}\tAPI token: {'yes' if user.api_token_hash else 'no'}")



@users_app.command("token")
def users_token(username: str, url: Optional[str] = typer.Option(None, help=URL_HELP)):
    """Make a new API token for a user (printed once; stored only as a hash; replaces the previous one)."""
    from db import accounts

    with store(url) as session:
        token = accounts.issue_api_token(session, accounts.get_user(session, username), actor="cli")
    print(token)

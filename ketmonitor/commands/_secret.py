"""Reading a password for the commands that sign or manage keys: from the terminal (not echoed)
or, for scripts, the first line of stdin. Never from an argument: it would sit in the shell
history and in every process listing."""

from __future__ import annotations

import getpass
import sys

from ..errors import AuthError


def add_password_stdin(parser) -> None:
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of stdin instead of asking")


def read_password(args, prompt: str, *, confirm: bool = False) -> str:
    if getattr(args, "password_stdin", False):
        secret = sys.stdin.readline().rstrip("\r\n")
    else:
        try:
            secret = getpass.getpass(prompt)
            if confirm and secret != getpass.getpass("Again: "):
                raise AuthError("the passwords differ")
        except EOFError:
            secret = ""
    if not secret:
        raise AuthError("no password given")
    return secret

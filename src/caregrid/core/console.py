"""CLI output conventions: a user error is one line on stderr and exit code 2."""

from __future__ import annotations

import typer
from rich.console import Console

err = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Print one error line; `raise fail("...")` ends the command with exit code 2."""
    err.print(f"[red]错误：[/red]{message}", highlight=False, soft_wrap=True)
    return typer.Exit(2)

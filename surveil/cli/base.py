"""What every command shares: the group and command classes that turn a `SurveilError`
into one line on stderr and exit 1, lazy subcommands, options that show their environment
variable, and the settings built from the root options."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from infra.errors import ConfigError, SurveilError
from infra.settings import Settings
from surveil.cli import console

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def _reported() -> Iterator[None]:
    """Turn a `SurveilError` into ``error: ...`` on stderr and exit status 1."""
    try:
        yield
    except SurveilError as exc:
        console.error(str(exc))
        raise click.exceptions.Exit(1) from None


class Command(click.Command):
    """A command whose `SurveilError` is a one-line message and exit 1, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; report a `SurveilError` and exit 1."""
        with _reported():
            return super().invoke(ctx)


class Group(click.Group):
    """A group of `Command`s whose subcommands may live in modules imported on first use.

    Args:
        lazy: command name -> ("module:attribute", short help); the module is imported only
            when the command runs or shows its help, so ``--help`` stays fast.
    """

    command_class = Command
    group_class = type  # subgroups are Groups too

    def __init__(
        self, *args: Any, lazy: Mapping[str, tuple[str, str]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def invoke(self, ctx: click.Context) -> Any:
        """Run the group and its subcommand; report a `SurveilError` and exit 1."""
        with _reported():
            return super().invoke(ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command, loaded or not, sorted."""
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """Return a command, importing its module the first time it is asked for."""
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module, _, attribute = self.lazy[cmd_name][0].partition(":")
            command = getattr(importlib.import_module(module), attribute)
            if not isinstance(command, click.Command):
                msg = f"{self.lazy[cmd_name][0]} is not a click command"
                raise TypeError(msg)
            self.add_command(command, cmd_name)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands with their short help, without importing the lazy ones."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            command = self.commands.get(name)
            if command is None:
                rows.append((name, click.utils.make_default_short_help(self.lazy[name][1], limit)))
            elif not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def env_option(name: str, env: str, help_: str, *decls: str, **kwargs: Any) -> Callable[[F], F]:
    """An option read from ``env`` when not given, shown in --help; default None unless given.

    Args:
        decls: more declarations, such as the parameter's name.
    """
    kwargs.setdefault("default", None)
    return click.option(name, *decls, envvar=env, show_envvar=True, help=help_, **kwargs)


def settings_problems(exc: ValidationError) -> str:
    """Say on one line which settings are invalid, by their environment variable and why."""
    fields = Settings.model_fields
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        what = error["msg"].removeprefix("Value error, ")
        field = fields.get(name)
        # A value_error's message quotes the value itself; a secret's value is never shown.
        if error["type"] != "value_error" and "SecretStr" not in str(field and field.annotation):
            what += f", got {error['input']!r}"
        problems.append(f"SURVEIL_{name.upper()} ({name}): {what}" if name else what)
    return f"invalid setting{'s' if len(problems) > 1 else ''} " + "; ".join(problems)


class SettingsContext:
    """The root options, from which each command builds the settings (with its own options).

    Args:
        overrides: setting name -> value given on the command line; None means not given.
    """

    def __init__(self, overrides: Mapping[str, Any] | None = None) -> None:
        self.overrides = {k: v for k, v in (overrides or {}).items() if v is not None}

    def settings(self, **more: Any) -> Settings:
        """The settings: environment, then the root options, then ``more`` (None skipped).

        Raises:
            ConfigError: a setting is invalid, named by its environment variable.
        """
        values = {**self.overrides, **{k: v for k, v in more.items() if v is not None}}
        try:
            return Settings(**values)
        except ValidationError as exc:
            raise ConfigError(settings_problems(exc)) from exc


# A command run on its own (as tests do) gets a SettingsContext of the environment alone.
pass_settings = click.make_pass_decorator(SettingsContext, ensure=True)

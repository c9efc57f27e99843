"""Typer commands built from config dataclasses, so each option is declared once, on its field.

`@command(group, EmbedConfig)` turns every `option(...)`/`argument(...)` field of the config
(and of its nested option groups) into a Typer parameter with the field's default, help and
flags; the command receives the finished config, already checked. A `CurateError` raised
anywhere below leaves as one `error:` line and exit code 2, never a traceback.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import typer

from curate.errors import CurateError
from curate.schemas.config.options import is_nested, long_flag, spec_of

F = TypeVar("F", bound=Callable[..., Any])
QUIET_HELP = "Silence logs and progress; print only results and errors."


def reports_errors(fn: F) -> F:
    """Print a `CurateError` as one line and exit 2 instead of showing a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from rich.markup import escape

        from curate.console import stderr

        try:
            return fn(*args, **kwargs)
        except CurateError as exc:  # escaped: messages quote paths and hints with [brackets]
            stderr.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            stderr.print("interrupted; rerun the same command to resume where it stopped")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class Param:
    """One command-line parameter: where its value goes in the config, and how Typer declares it."""

    name: str  # the Python parameter name, unique over the flattened config
    path: tuple[str, ...]  # field names from the top config down to this field
    annotation: Any
    default: Any  # a typer.Option / typer.Argument


def command(group: typer.Typer, config_type: type, *, name: str | None = None, quiet: bool = False,
            silent: bool = False) -> Callable[[F], F]:
    """Register `run(config[, quiet])` on `group` as a command whose options are the config's fields.

    The function's docstring is the command's help. With `quiet=True` the command also takes
    `--quiet/-q`, sets up logging accordingly and passes `quiet` on; `silent=True` keeps logs
    to warnings for commands whose stdout is their whole answer.
    """

    def register(run: F) -> F:
        params = list(config_params(config_type))
        if quiet:
            params.append(Param("quiet", (), bool, typer.Option(False, "--quiet", "-q", help=QUIET_HELP)))

        @reports_errors
        def callback(**values: Any) -> None:
            from curate.console import setup_logging

            loud = not values.pop("quiet", False) if quiet else not silent
            setup_logging(quiet=not loud)
            config = build_config(config_type, values)
            run(config, quiet=not loud) if quiet else run(config)

        callback.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, default=p.default, annotation=p.annotation)
             for p in params]
        )
        callback.__annotations__ = {p.name: p.annotation for p in params}
        callback.__doc__ = run.__doc__
        group.command(name or run.__name__.rstrip("_").replace("_", "-"))(callback)
        return run

    return register


def config_params(config_type: type, path: tuple[str, ...] = ()) -> typing.Iterator[Param]:
    """The parameters of a config: its option fields, nested groups flattened in place."""
    hints = typing.get_type_hints(config_type)
    for f in dataclasses.fields(config_type):
        if is_nested(f):
            yield from config_params(hints[f.name], path + (f.name,))
            continue
        spec = spec_of(f)
        if spec is None:
            continue
        annotation = cli_type(hints[f.name])
        yield Param("__".join(path + (f.name,)), path + (f.name,), annotation, typer_parameter(f, annotation))


def typer_parameter(f: dataclasses.Field, annotation: Any) -> Any:
    """The `typer.Option`/`typer.Argument` of a field: default, flags, help, metavar."""
    spec = spec_of(f)
    assert spec is not None
    default = ... if spec.required else field_default(f)
    if isinstance(default, tuple):
        default = list(default) or None
    if spec.argument:
        return typer.Argument(default, help=spec.help, metavar=spec.metavar, show_default=spec.show_default)
    return typer.Option(default, *flags_of(f, annotation), help=spec.help, metavar=spec.metavar,
                        show_default=spec.show_default)


def flags_of(f: dataclasses.Field, annotation: Any) -> tuple[str, ...]:
    """Declared flags, else `--field-name` (`--x/--no-x` for a switch, as Typer would make it)."""
    spec = spec_of(f)
    if spec is not None and spec.flags:
        return spec.flags
    flag = long_flag(f)
    return (f"{flag}/--no-{flag[2:]}",) if annotation is bool else (flag,)


def field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return ...


def cli_type(hint: Any) -> Any:
    """The type Typer parses a field as: tuples become repeatable lists, path-or-URL unions text."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        return list[cli_type(args[0])]  # type: ignore[misc]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        rest = [a for a in args if a is not type(None)]
        inner = cli_type(rest[0]) if len(rest) == 1 else str  # str | Path: what the user typed
        return Optional[inner] if type(None) in args else inner
    return hint if hint in (bool, int, float, str, Path) else str


def build_config(config_type: type, values: dict[str, Any], path: tuple[str, ...] = ()) -> Any:
    """The config (and its nested groups) from the flattened parameter values."""
    hints = typing.get_type_hints(config_type)
    given: dict[str, Any] = {}
    for f in dataclasses.fields(config_type):
        if is_nested(f):
            given[f.name] = build_config(hints[f.name], values, path + (f.name,))
            continue
        key = "__".join(path + (f.name,))
        if key not in values:
            continue
        value = values[key]
        if isinstance(value, list):
            value = tuple(value)
        if value is None and typing.get_origin(hints[f.name]) is tuple:
            continue  # a repeatable option left out: the config's default
        given[f.name] = value
    return config_type(**given)

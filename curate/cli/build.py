"""Commands built from config dataclasses, so each option is declared once, on its field.

`@command(group, EmbedConfig)` turns every `option(...)`/`argument(...)` field of the config
(and of its nested option groups) into a click parameter with the field's default, help and
flags; the command receives the finished config. A `CurateError` raised anywhere below leaves
as one `error:` line and exit code 2, never a traceback. Plain click (no rich help) keeps
`curate --help` fast: only the config modules are imported to draw it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import click

from curate.errors import CurateError, environment_problem
from curate.schemas.config.options import OptionSpec, is_nested, long_flag, spec_of

F = TypeVar("F", bound=Callable[..., Any])
QUIET_HELP = "Silence logs and progress; print only results and errors."


class OneLineUsageError(click.UsageError):
    """A command-line mistake click found (a bad integer, an unknown option) as one `error:` line;
    click's own shows the usage, a hint and the error over four."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file, err=True)


class OneLineUsage:
    """Mixed into the group and command classes: usage errors leave as `OneLineUsageError`."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        with one_line_usage():
            return super().make_context(info_name, args, parent=parent, **extra)  # type: ignore[misc]


@contextlib.contextmanager
def one_line_usage() -> Iterator[None]:
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:  # `curate` alone prints the help, as asked
        raise
    except click.UsageError as exc:
        where = f"; see `{exc.ctx.command_path} --help`" if exc.ctx is not None else ""
        raise OneLineUsageError(exc.format_message().rstrip(".") + where + ".", ctx=exc.ctx) from None


class FlowCommand(OneLineUsage, click.Command):
    """A command whose usage errors are one line."""


class FlowGroup(OneLineUsage, click.Group):
    """A command group that lists its commands in the order they were added (the flow's).

    A lazy entry (name -> module, one-line help) is registered from its module only when it is
    run or asked for help, so `curate --help` never imports the products' configs.
    """

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands) + [name for name in self.lazy if name not in self.commands]

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        with one_line_usage():  # `curate embedd`: no such command
            return super().resolve_command(ctx, args)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy and name not in self.commands:
            importlib.import_module(self.lazy[name][0]).register(self)
        return self.commands.get(name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self.lazy[name][1] if name in self.lazy and name not in self.commands
                 else self.commands[name].get_short_help_str(limit=formatter.width - 6 - len(name)))
                for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def group(name: str | None = None, help: str = "", *, lazy: dict[str, tuple[str, str]] | None = None) -> FlowGroup:
    return FlowGroup(name=name, help=help, no_args_is_help=True, lazy=lazy,
                     context_settings={"help_option_names": ["--help", "-h"], "max_content_width": 100})


def subgroup(parent: FlowGroup, name: str, help: str | None = None) -> FlowGroup:
    """A group added under `parent`; its help defaults to what `parent` announced for it lazily."""
    child = group(name, help if help is not None else parent.lazy.get(name, ("", ""))[1])
    parent.add_command(child)
    return child


def reports_errors(fn: F) -> F:
    """Print a `CurateError`, or an OSError the user can fix (`environment_problem`), as one line
    and exit 2 instead of showing a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from rich.text import Text

        from curate.console import stderr

        try:
            return fn(*args, **kwargs)
        except CurateError as exc:  # plain text: messages quote paths, captions and hints with [brackets]
            stderr.print(Text.assemble(("error:", "bold red"), " ", str(exc)), highlight=False, soft_wrap=True)
            raise click.exceptions.Exit(2) from None
        except OSError as exc:  # a full disk, a read-only folder: the user's to fix, not a bug
            problem = environment_problem(exc)
            if problem is None:
                raise
            stderr.print(Text.assemble(("error:", "bold red"), " ", problem), highlight=False, soft_wrap=True)
            raise click.exceptions.Exit(2) from None
        except KeyboardInterrupt:
            stderr.print("interrupted; rerun the same command to resume where it stopped")
            raise click.exceptions.Exit(130) from None

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class Param:
    """One command-line parameter: where its value goes in the config, and its declaration."""

    name: str  # the Python name click passes the value under, unique over the flattened config
    field: dataclasses.Field
    hint: Any  # the field's resolved type


def command(parent: click.Group, config_type: type, *, name: str | None = None, quiet: bool = False,
            silent: bool = False) -> Callable[[F], F]:
    """Register `run(config[, quiet])` on `parent` as a command whose options are the config's fields.

    The function's docstring is the command's help. With `quiet=True` the command also takes
    `--quiet/-q`, sets up logging accordingly and passes `quiet` on; `silent=True` keeps logs
    to warnings for commands whose stdout is their whole answer.
    """

    def register(run: F) -> F:
        params = list(config_params(config_type))
        declared = [click_param(p) for p in params]
        if quiet:
            declared.append(click.Option(["--quiet", "-q", "quiet"], is_flag=True, help=QUIET_HELP))

        @reports_errors
        def callback(**values: Any) -> None:
            from curate.console import setup_logging

            hushed = values.pop("quiet", False) if quiet else silent
            setup_logging(quiet=hushed)
            config = build_config(config_type, values)
            run(config, quiet=hushed) if quiet else run(config)

        doc = (run.__doc__ or "").strip()
        parent.add_command(FlowCommand(
            name or run.__name__.rstrip("_").replace("_", "-"), params=declared, callback=callback,
            help=doc + arguments_help(params), short_help=doc.split("\n")[0],
            context_settings={"help_option_names": ["--help", "-h"], "max_content_width": 100},
        ))
        return run

    return register


def config_params(config_type: type, path: tuple[str, ...] = ()) -> Iterator[Param]:
    """The parameters of a config: its option fields, nested groups flattened in place."""
    hints = typing.get_type_hints(config_type)
    for f in dataclasses.fields(config_type):
        if is_nested(f):
            yield from config_params(hints[f.name], path + (f.name,))
        elif spec_of(f) is not None:
            yield Param("__".join(path + (f.name,)), f, hints[f.name])


def click_param(param: Param) -> click.Parameter:
    """The click declaration of one field: type, default, flags, help, metavar."""
    spec: OptionSpec = spec_of(param.field)  # type: ignore[assignment]
    kind, many = click_type(param.hint)
    default = None if spec.required else field_default(param.field)
    if isinstance(default, tuple):  # a repeatable option left empty keeps its (empty) default
        default = list(default) or (None if spec.argument else [])
    if spec.argument:
        metavar = (spec.metavar or param.field.name.upper()) + ("..." if many else "")
        given = {} if spec.required else {"default": default}  # click takes an explicit None as a value given
        return click.Argument([param.name], type=kind, nargs=-1 if many else 1, required=spec.required,
                              metavar=metavar, **given)
    if kind is bool:
        return click.Option([*flags(param.field), param.name], is_flag=True, default=bool(default), help=spec.help,
                            show_default=False)
    return click.Option([*flags(param.field), param.name], type=kind, multiple=many, default=default,
                        required=spec.required, help=spec.help, metavar=spec.metavar,
                        show_default=spec.show_default if default not in (None, []) else False)


def flags(f: dataclasses.Field) -> tuple[str, ...]:
    """Declared flags, else `--field-name`."""
    spec = spec_of(f)
    return spec.flags if spec is not None and spec.flags else (long_flag(f),)


def field_default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def click_type(hint: Any) -> tuple[Any, bool]:
    """(the click type a field is parsed as, whether it repeats): tuples repeat, `X | None` is X,
    a path-or-URL union is text."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        return click_type(args[0])[0], True
    if origin is typing.Union or type(hint).__name__ == "UnionType":
        rest = [a for a in args if a is not type(None)]
        return (click_type(rest[0])[0] if len(rest) == 1 else str), False
    if hint is Path:
        return click.Path(path_type=Path), False
    return (hint if hint in (bool, int, float, str) else str), False


def arguments_help(params: list[Param]) -> str:
    """click shows no help for positional arguments: list them under the command's own help."""
    lines = [(spec_of(p.field).metavar or p.field.name.upper(), spec_of(p.field).help)  # type: ignore[union-attr]
             for p in params if spec_of(p.field).argument]  # type: ignore[union-attr]
    if not lines:
        return ""
    width = max(len(name) for name, _ in lines)
    return "\n\n\b\nArguments:\n" + "\n".join(f"  {name.ljust(width)}  {text}" for name, text in lines)


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
        if isinstance(value, (list, tuple)):
            if not value and typing.get_origin(hints[f.name]) is tuple and not spec_of(f).argument:  # type: ignore[union-attr]
                continue  # a repeatable option left out: the config's default
            value = tuple(value)
        given[f.name] = value
    return config_type(**given)

"""How a config field becomes a command-line option: its help, flags and check, written once.

A command's config is a frozen dataclass. Each field a user may set is declared with
`option(...)` or `argument(...)`: the dataclass keeps the default, the field's metadata keeps
the help text, the flags and the check. The CLI builds its commands from these fields
(`curate/cli/build.py`) and `check_fields` runs every field's check, so nothing about an
option is written twice. Fields declared without them (a seed for figures, a pixel cap) are
settings of the library, not of the command line. `nested(...)` embeds a shared group of
options (the encoders, the executor) whose fields become options of the command too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

Check = Callable[[str, Any], None]  # (the option as the user typed it, the value) -> raises CurateError
SPEC_KEY = "curate.option"
NESTED_KEY = "curate.nested"


@dataclass(frozen=True)
class OptionSpec:
    """What the command line needs to know of one config field."""

    help: str = ""
    flags: tuple[str, ...] = ()  # empty: `--field-name`
    argument: bool = False  # positional
    required: bool = False  # the command line must give it (the dataclass keeps a default for library use)
    metavar: str | None = None
    check: Check | None = None
    show_default: bool | str = True


def option(default: Any = dataclasses.MISSING, help: str = "", *, factory: Callable[[], Any] | None = None,
           flags: tuple[str, ...] = (), check: Check | None = None, required: bool = False,
           metavar: str | None = None, show_default: bool | str = True) -> Any:
    """A config field that is also a command-line option."""
    spec = OptionSpec(help=help, flags=flags, check=check, required=required, metavar=metavar,
                      show_default=show_default)
    if factory is not None:
        return field(default_factory=factory, metadata={SPEC_KEY: spec})
    return field(default=default, metadata={SPEC_KEY: spec})


def argument(default: Any = dataclasses.MISSING, help: str = "", *, check: Check | None = None,
             metavar: str | None = None, required: bool = True) -> Any:
    """A config field given positionally on the command line (an input, a run directory)."""
    spec = OptionSpec(help=help, argument=True, check=check, required=required, metavar=metavar)
    return field(default=default, metadata={SPEC_KEY: spec})


def nested(factory: Callable[[], Any]) -> Any:
    """A sub-config whose options are options of the command that embeds it."""
    return field(default_factory=factory, metadata={NESTED_KEY: True})


def spec_of(f: dataclasses.Field) -> OptionSpec | None:
    return f.metadata.get(SPEC_KEY)


def is_nested(f: dataclasses.Field) -> bool:
    return bool(f.metadata.get(NESTED_KEY))


def long_flag(f: dataclasses.Field) -> str:
    """The flag messages name the field by: its first `--` flag, else its only flag, else `--field-name`."""
    declared = spec_of(f).flags if spec_of(f) else ()
    given = [flag for flag in declared if flag.startswith("--")] or list(declared)
    return given[0] if given else "--" + f.name.replace("_", "-")


def option_fields(config: Any) -> Iterator[tuple[dataclasses.Field, Any]]:
    """Every option field of `config` and of its nested configs, with its value."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if is_nested(f):
            yield from option_fields(value)
        elif spec_of(f) is not None:
            yield f, value


def check_fields(config: Any) -> None:
    """Run each option's own check (the first failure raises `CurateError` naming the option).

    Options are checked before positional arguments, whose checks look at the filesystem: a
    typo in a value is reported as such even when the run directory is missing too."""
    fields = sorted(option_fields(config), key=lambda pair: spec_of(pair[0]).argument)  # type: ignore[union-attr]
    for f, value in fields:
        spec = spec_of(f)
        if spec is not None and spec.check is not None:
            spec.check(long_flag(f) if not spec.argument else f.name.upper(), value)


def redefault(config_cls: type, name: str, default: Any) -> Any:
    """The option `name` of `config_cls` with another default: a subclass's own recipe."""
    parent = {f.name: f for f in dataclasses.fields(config_cls)}[name]
    return field(default=default, metadata=parent.metadata)

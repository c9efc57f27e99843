"""Commands built from config fields: every option is on its command, with the field's default,
and a value its check refuses gives one line naming the option."""

from __future__ import annotations

import dataclasses

import click
import pytest
from click.testing import CliRunner

from curate.cli.app import app
from curate.cli.build import config_params, field_default
from curate.schemas.config.flow import EmbedConfig, FilterConfig, ScoreConfig, StatsConfig, TrainConfig
from curate.schemas.config.options import long_flag, spec_of
from curate.schemas.config.review import ReportConfig, SqlConfig
from curate.schemas.config.vectors import DedupConfig, IndexConfig, SearchConfig

COMMANDS = {
    ("embed",): EmbedConfig, ("train",): TrainConfig, ("score",): ScoreConfig, ("stats",): StatsConfig,
    ("filter",): FilterConfig, ("index",): IndexConfig, ("search",): SearchConfig, ("dedup",): DedupConfig,
    ("report",): ReportConfig, ("sql",): SqlConfig,
}


def command_at(path: tuple[str, ...]) -> click.Command:
    node: click.Command = app
    ctx = click.Context(app)
    for name in path:
        node = node.get_command(ctx, name)  # type: ignore[attr-defined]
    return node


def test_the_app_lists_the_flow_in_order():
    names = app.list_commands(click.Context(app))
    assert names == ["embed", "train", "score", "stats", "filter", "index", "search", "dedup", "report", "sql",
                     "caption", "prompts"]


@pytest.mark.parametrize("path, config_type", COMMANDS.items(), ids=lambda v: " ".join(v) if isinstance(v, tuple) else "")
def test_every_option_field_is_a_parameter_with_the_fields_default(path, config_type):
    params = {p.name: p for p in command_at(path).params}
    for param in config_params(config_type):
        declared = params[param.name]
        spec = spec_of(param.field)
        if spec.argument:
            assert isinstance(declared, click.Argument)
            continue
        assert long_flag(param.field) in declared.opts, (param.name, declared.opts)
        if not spec.required:
            default = field_default(param.field)
            expected = list(default) if isinstance(default, tuple) else default
            assert declared.default == expected, param.name


def test_nested_groups_become_options_of_the_command():
    names = {p.name for p in command_at(("embed",)).params}
    assert {"encoders__image_model", "encoders__max_text_tokens", "executor__name", "executor__max_retries"} <= names


@pytest.mark.parametrize("args, says", [
    (["embed", "x", "--out", "r", "--batch-size", "0"], "--batch-size must be at least 1 (got 0)."),
    (["embed", "x", "--out", "r", "--max-text-tokens", "0"], "--max-text-tokens must be at least 1 (got 0)."),
    (["embed", "x", "--out", "r", "--executor", "dask"], "Unknown --executor 'dask'; known: local, ray."),
    (["train", "run", "--out", "p", "--weight-decay", "nan"], "--weight-decay must be a finite number (got nan)."),
    (["train", "run", "--out", "p", "--val-fraction", "1"], "--val-fraction must lie in (0, 1)"),
    (["index", "run", "--projection", "p", "--target-recall", "0"], "--target-recall must lie in (0, 1]"),
])
def test_a_value_the_check_refuses_is_one_line_naming_the_option(args, says):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], result.stderr


def test_config_defaults_are_declared_once():
    """The dataclass default is what the command line shows: nothing restates it."""
    embed = {p.name: p for p in command_at(("embed",)).params}
    assert embed["batch_size"].default == EmbedConfig().batch_size
    assert embed["encoders__text_model"].default == dataclasses.fields(EmbedConfig)[2].default_factory().text_model

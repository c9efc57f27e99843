"""The `curate` command line: parses options into a config, calls a pipeline, prints.

No logic lives here. Problems a user can fix arrive as `CurateError` and leave as one line
on stderr with exit code 2.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

import typer

from curate.errors import CurateError
from curate.schemas.config import EmbedConfig, EncoderConfig

app = typer.Typer(
    help="Score and filter image-text pairs into clean training sets.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
F = TypeVar("F", bound=Callable[..., Any])
EMBED = EmbedConfig()
ENC = EncoderConfig()


def reports_errors(fn: F) -> F:
    """Print a `CurateError` as one line and exit 2 instead of showing a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from curate.console import stderr

        try:
            return fn(*args, **kwargs)
        except CurateError as exc:
            stderr.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            stderr.print("interrupted; rerun the same command to resume where it stopped")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def main() -> None:
    """Score and filter image-text pairs into clean training sets.

    The flow: embed -> train -> score -> filter. Run `curate COMMAND --help` for each step.
    """


QUIET = typer.Option(False, "--quiet", "-q", help="Silence logs and progress; print only results and errors.")


@app.command()
@reports_errors
def embed(
    inputs: list[Path] = typer.Argument(..., help="Shard files or directories (walked recursively)."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory: writes embeddings/ and errors/ there."),
    image_model: str = typer.Option(ENC.image_model, help="Image encoder: hub id or local directory."),
    text_model: str = typer.Option(ENC.text_model, help="Text encoder: hub id or local directory."),
    text_pooling: str = typer.Option(ENC.text_pooling, help="Text pooling: mean or cls."),
    max_text_tokens: int = typer.Option(ENC.max_text_tokens, help="Captions are truncated to this many tokens."),
    batch_size: int = typer.Option(EMBED.batch_size, help="Pairs per model batch."),
    workers: int = typer.Option(EMBED.workers, help="Decode worker processes (0: decode in the main process)."),
    device: str = typer.Option(ENC.device, help="auto, cpu or cuda."),
    format: Optional[str] = typer.Option(None, "--format", help="Force a shard format instead of detecting it."),
    limit: Optional[int] = typer.Option(None, help="Embed at most this many samples per shard (for a quick try)."),
    overwrite: bool = typer.Option(False, help="Redo shards that are already embedded."),
    quiet: bool = QUIET,
) -> None:
    """Embed image-text pairs: shards -> RUN_DIR/embeddings/ (+ errors/), resumable."""
    from curate.console import setup_logging, stderr, stdout
    from curate.pipelines.embed import run_embed
    from curate.summaries import embed_table, stage_line

    setup_logging(quiet=quiet)
    encoders = EncoderConfig(
        image_model=image_model, text_model=text_model, text_pooling=text_pooling,
        max_text_tokens=max_text_tokens, device=device,
    )
    config = EmbedConfig(
        inputs=tuple(inputs), out=out, encoders=encoders, batch_size=batch_size, workers=workers,
        format=format, limit=limit, overwrite=overwrite,
    )
    summary = run_embed(config, quiet=quiet)
    stdout.print(embed_table(summary))
    if not quiet and stage_line(summary):
        stderr.print(stage_line(summary), highlight=False)


if __name__ == "__main__":
    app()

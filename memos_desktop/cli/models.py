"""``memos-desktop models list|pull|use|rm|verify``: the model manager on the command line.

Design rules: stdout is data (``--json`` for machines), stderr is narration and the download
progress bar. Errors are raised as MemosError and printed by the main group with their exit code.
Only ``pull`` may use the network. Registered in cli.py with ``main.add_command(models)``.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, cast

import click

from memos_desktop.config import Paths, Settings, load_settings, resolve_paths

if TYPE_CHECKING:
    from memos_desktop.api import Kind


def _env() -> tuple[Paths, Settings]:
    """Paths and settings from the main group's context object, or fresh when run on its own."""
    obj = click.get_current_context().find_root().obj
    paths = getattr(obj, "paths", None)
    settings = getattr(obj, "settings", None)
    if isinstance(paths, Paths) and isinstance(settings, Settings):
        return paths, settings
    paths = resolve_paths()
    return paths, load_settings(paths)


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1024**3:.1f}G" if n >= 1024**3 else f"{n / 1024**2:.0f}M"


@click.group()
def models() -> None:
    """List, download, choose and remove models."""


@models.command("list")
@click.option("--kind", type=click.Choice(["chat", "embedding"]))
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
def list_cmd(kind: str | None, as_json: bool) -> None:
    """Built-in and recommended models, what they need, and which are installed."""
    from memos_desktop.api import list_models

    paths, settings = _env()
    infos = [i for i in list_models(paths, settings) if kind is None or i.entry.kind == kind]
    served = _served(settings) if kind in (None, "chat") else []
    if as_json:
        _emit([i.to_json() for i in infos] + served)
        return
    click.echo(f"{'':2}{'id':<24}{'kind':<10}{'disk':>6}{'ram':>6}  {'installed':<10}licence")
    for i in infos:
        mark = "*" if i.active else " "
        state = "built-in" if i.entry.builtin else ("yes" if i.installed else "no")
        click.echo(
            f"{mark} {i.entry.id:<24}{i.entry.kind:<10}{_size(i.entry.size_bytes):>6}"
            f"{_size(i.entry.ram_bytes):>6}  {state:<10}{i.entry.license}"
        )
    for m in served:
        mark = "*" if m["active"] else " "
        click.echo(f"{mark} {m['id']:<24}{'chat':<10}{'-':>6}{'-':>6}  {'server':<10}{m['url']}")
    click.echo(
        "\n* = active. `memos-desktop models pull ID` downloads one; "
        "`models use ID` makes it active.",
        err=True,
    )


def _served(settings: Settings) -> list[dict[str, Any]]:
    """The ``[openai]`` server's models as rows; a note on stderr when it is not there."""
    from memos_desktop.api import server_models
    from memos_desktop.errors import MemosError

    try:
        models = server_models(settings)
    except MemosError as exc:
        click.echo(f"note: {exc.message}; its models are not listed", err=True)
        return []
    url = settings.openai.base_url
    return [
        {
            "id": m.id,
            "kind": "chat",
            "source": "server",
            "url": url,
            "owned_by": m.owned_by,
            "n_ctx": m.n_ctx or None,
            "installed": True,
            "active": m.id == settings.models.chat,
        }
        for m in models
    ]


@models.command()
@click.argument("model_id")
@click.option("--force", is_flag=True, help="download again even if installed")
@click.option("--json", "as_json", is_flag=True)
def pull(model_id: str, force: bool, as_json: bool) -> None:
    """Download MODEL_ID from the Hugging Face hub (resumable, checksum-checked)."""
    from memos_desktop.api import model_entry, pull_model, tqdm_progress

    paths, _ = _env()
    entry = model_entry(model_id)
    if not entry.builtin:
        click.echo(f"Fetching {entry.repo_id}/{entry.filename} ...", err=True)
    path = pull_model(paths, model_id, tqdm_progress, force=force)
    if as_json:
        _emit({"id": model_id, "path": str(path), "size": path.stat().st_size})
    else:
        click.echo(str(path))
        click.echo(
            f"'{model_id}' is ready. Make it active with `memos-desktop models use {model_id}`.",
            err=True,
        )


@models.command()
@click.argument("model_id")
@click.option(
    "--kind",
    type=click.Choice(["chat", "embedding"]),
    help="needed only when MODEL_ID is a path to a .gguf file",
)
@click.option("--json", "as_json", is_flag=True)
def use(model_id: str, kind: str | None, as_json: bool) -> None:
    """Make MODEL_ID the active chat or embedding model (saved in the settings file)."""
    from memos_desktop.api import model_kind, use_model

    paths, settings = _env()
    if kind is not None:
        found = model_kind(paths, model_id)
        if found is not None and found != kind:
            raise click.UsageError(f"{model_id} is a {found} model, not {kind}")
    new = use_model(paths, settings, model_id, kind=cast("Kind | None", kind))
    changed = (
        "chat"
        if new.models.chat != settings.models.chat
        else ("embedding" if new.models.embedding != settings.models.embedding else None)
    )
    if as_json:
        _emit({"chat": new.models.chat, "embedding": new.models.embedding})
    elif changed is None:
        click.echo(f"'{model_id}' is already the active model.", err=True)
    else:
        click.echo(f"The {changed} model is now '{model_id}'.", err=True)
        if changed == "embedding":
            click.echo(
                "Vectors record the model that made them: memories embedded with the "
                "previous model need re-embedding before meaning search uses them.",
                err=True,
            )


@models.command("rm")
@click.argument("model_id")
@click.option("--force", is_flag=True, help="remove it even if it is the active model")
@click.option("--yes", is_flag=True, help="do not ask for confirmation")
def rm(model_id: str, force: bool, yes: bool) -> None:
    """Delete a downloaded model (built-ins: their cached file, rebuilt on next use)."""
    from memos_desktop.api import model_entry, remove_model

    paths, settings = _env()
    entry = model_entry(model_id)
    if not yes and not entry.builtin:
        if not sys.stdin.isatty():
            raise click.UsageError("add --yes to confirm (no terminal to ask on)")
        click.confirm(f"Delete '{model_id}' ({entry.size_bytes / 1024**2:.0f} MB)?", abort=True)
    removed = remove_model(paths, settings, model_id, force=force)
    if not removed:
        click.echo(f"'{model_id}' was not installed; nothing to delete.", err=True)
    for p in removed:
        click.echo(f"Deleted {p}", err=True)


@models.command()
@click.argument("model_id")
def verify(model_id: str) -> None:
    """Re-hash a downloaded model and compare with the sha256 recorded when it was pulled."""
    from memos_desktop.api import verify_model
    from memos_desktop.errors import InvalidInputError

    paths, _ = _env()
    if not verify_model(paths, model_id):
        raise InvalidInputError(
            f"'{model_id}' does not match the sha256 recorded when it was downloaded",
            hint=f"run `memos-desktop models pull --force {model_id}`",
        )
    click.echo(f"'{model_id}' is intact.", err=True)

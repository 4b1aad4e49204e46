"""What every ``memos-desktop`` command shares: the context (settings, profile, the API opened
on first use), passphrase prompting, errors as messages with exit codes, input that must be
text, and output helpers.

Design rule (issue 15): before anything else, the secrets are taken out of the environment
(``config.take_env_secrets``: no child process can inherit them) and every argument is checked
to be text (undecodable bytes -> exit 9 with a message, never a traceback)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import click

from memos_desktop.api.types import (
    MEMORY_LAYERS,
    MEMORY_STATUSES,
    MEMORY_TYPES,
    MemoryItem,
    SearchFilters,
)
from memos_desktop.config import (
    PASSPHRASE_ENV,
    Paths,
    Settings,
    take_env_secrets,
)
from memos_desktop.errors import (
    EngineError,
    InvalidInputError,
    MemosError,
    NotTextError,
    decode_text,
    require_text,
)

if TYPE_CHECKING:  # the API (numpy, the store, the memory layer) is imported when first used,
    # so the terminal app paints without waiting for it
    from memos_desktop.api import MemosAPI

log = logging.getLogger(__name__)


@dataclass
class Ctx:
    paths: Paths
    settings: Settings
    profile: str
    _api: MemosAPI | None = None

    def api(self) -> MemosAPI:
        if self._api is None:
            from memos_desktop.api import default_embedder_factory, open_api

            self._api = open_api(
                self.paths,
                self.settings,
                profile=self.profile,
                passphrase_provider=prompt_passphrase,
                embedder_factory=default_embedder_factory(
                    self.paths, self.settings, on_missing=warn_no_embedder
                ),
            )
        return self._api

    def use_chat_model(self, model: str) -> None:
        """Use ``model`` (a catalog id, a .gguf path or openai:NAME) for this command only:
        the settings file is not changed. Called before the API opens."""
        require_text(model, "--model")
        if not model.strip():
            raise click.UsageError("-m/--model needs a model id")
        models = dataclasses.replace(self.settings.models, chat=model.strip())
        self.settings = dataclasses.replace(self.settings, models=models)

    def close(self) -> None:
        if self._api is not None:
            self._api.close()


def prompt_passphrase(prompt: str) -> str:
    if not sys.stdin.isatty():
        raise click.UsageError(
            f"a passphrase is needed and there is no terminal to ask it on; set {PASSPHRASE_ENV}"
        )
    return str(click.prompt(prompt, hide_input=True))


def warn_no_embedder(exc: EngineError) -> None:
    click.echo(f"warning: {exc}\n  (searching by words only until it is available)", err=True)


def fail(exc: MemosError) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)


def read_stdin_text(what: str = "the text on standard input") -> str:
    """All of stdin as text (NotTextError, exit 9, when it is not UTF-8)."""
    return decode_text(sys.stdin.buffer.read(), what)


def check_args(args: Sequence[str]) -> None:
    """Every command-line argument is text: undecodable bytes arrive as lone surrogates."""
    for i, a in enumerate(args, 1):
        shown = os.fsencode(a).decode("utf-8", "backslashreplace")[:60]
        require_text(a, f"argument {i} ({shown})")
    profile = os.environ.get("MEMOS_DESKTOP_PROFILE")
    if profile is not None:
        require_text(profile, "MEMOS_DESKTOP_PROFILE")


class MemosGroup(click.Group):
    """Turns MemosError into a clear message and its exit code."""

    def main(self, args: Sequence[str] | None = None, *a: Any, **kw: Any) -> Any:
        # First of all: no child process may inherit a secret, and arguments must be text.
        take_env_secrets()
        try:
            check_args(sys.argv[1:] if args is None else list(args))
        except NotTextError as exc:
            fail(exc)
        return super().main(args, *a, **kw)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MemosError as exc:
            fail(exc)
        finally:
            obj = ctx.find_object(Ctx)
            if obj is not None:
                obj.close()


def _ts(t: float | None) -> str:
    if t is None:
        return "-"
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


def _parse_time(value: str | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        return dt.datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise InvalidInputError(
            f"--{name} {value!r} is not a date",
            hint="use ISO format, e.g. 2026-05-01 or 2026-05-01T14:30",
        ) from None


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def short(item_id: str) -> str:
    return item_id[:8]


def print_items(items: Sequence[MemoryItem]) -> None:
    if not items:
        click.echo("(no memories)", err=True)
        return
    for it in items:
        tags = f"  #{' #'.join(it.tags)}" if it.tags else ""
        status = "" if it.status == "active" else f" [{it.status}]"
        pin = " *" if it.pinned else ""
        click.echo(
            f"{short(it.id)}  {it.type:<11} {_ts(it.created_at)}{status}{pin}  {it.text}{tags}"
        )


def filter_options(f: Callable[..., Any]) -> Callable[..., Any]:
    opts = [
        click.option("--type", "types", multiple=True, type=click.Choice(MEMORY_TYPES)),
        click.option("--layer", "layers", multiple=True, type=click.Choice(MEMORY_LAYERS)),
        click.option(
            "--status",
            "statuses",
            multiple=True,
            type=click.Choice(MEMORY_STATUSES),
            help="default: active",
        ),
        click.option("--tag", "tags", multiple=True, help="any of these tags"),
        click.option("--since", help="created on or after (ISO date)"),
        click.option("--until", help="created before (ISO date)"),
        click.option("--cube", help="cube name or id (default: the current cube)"),
        click.option("--json", "as_json", is_flag=True, help="machine-readable output"),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def make_filters(
    types: tuple[str, ...],
    layers: tuple[str, ...],
    statuses: tuple[str, ...],
    tags: tuple[str, ...],
    since: str | None,
    until: str | None,
) -> SearchFilters:
    return SearchFilters(
        types=types,
        layers=layers,
        statuses=statuses or ("active",),
        tags=tags,
        since=_parse_time(since, "since"),
        until=_parse_time(until, "until"),
    )

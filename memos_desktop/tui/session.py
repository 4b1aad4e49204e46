"""What the terminal app needs before and around the API, without textual: which start screen
to show, creating and unlocking the profile, and one lock that serialises the app's workers.

Design rules:
- Everything here runs in worker threads (opening a profile runs scrypt; loading a model takes
  seconds); nothing here touches the UI.
- The API is used by one worker at a time (``Session.lock``); a streaming answer takes the lock
  per token, so searches and edits interleave with generation instead of waiting for it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from memos_desktop.config import PASSPHRASE_ENV, Paths, Settings
from memos_desktop.errors import ModelNotFoundError, PassphraseRequiredError

if TYPE_CHECKING:
    from memos_desktop.api import MemosAPI
    from memos_desktop.engines.base import ChatEngine, Embedder

T = TypeVar("T")

KEYFILE = "key.json"  # store.profile.KEYFILE (checked by a test)

EngineFactory = Callable[[], "ChatEngine"]
EmbedderFactory = Callable[[], "Embedder | None"]


@dataclass(frozen=True)
class StartState:
    """``first_run`` (no profile), ``unlock`` (passphrase needed) or ``open``."""

    kind: str
    key_method: str = ""


def start_state(paths: Paths, profile: str) -> StartState:
    """Decided from key.json alone (plain JSON: no crypto or database import before the first
    paint). A damaged key.json counts as "open": opening then says what is wrong."""
    kf = paths.profile_dir(profile) / KEYFILE
    if not kf.exists():
        return StartState("first_run")
    try:
        method = str(json.loads(kf.read_text(encoding="utf-8")).get("method", "passphrase"))
    except (OSError, ValueError, AttributeError):
        return StartState("open", "passphrase")
    if method == "passphrase" and not os.environ.get(PASSPHRASE_ENV):
        return StartState("unlock", method)
    return StartState("open", method)


def keyring_choice() -> tuple[bool, str]:
    """(usable, why not) for the first-run screen."""
    from memos_desktop.store import keys

    st = keys.keyring_status()
    return st.usable, st.reason


def create(
    paths: Paths, profile: str, settings: Settings, method: str, passphrase: str | None
) -> None:
    from memos_desktop.store.profile import create_profile

    create_profile(paths, profile, settings, method=method, passphrase=passphrase).close()


def default_embedder_factory(paths: Paths, settings: Settings) -> EmbedderFactory:
    def load() -> Embedder | None:
        from memos_desktop.engines.embeddings import load_embedder

        try:
            return load_embedder(paths, settings.models.embedding)
        except ModelNotFoundError:
            return None  # words-only search until the model is there

    return load


def default_engine_factory(paths: Paths, settings: Settings) -> EngineFactory:
    def load() -> ChatEngine:
        from memos_desktop.engines.loader import load_chat_engine

        return load_chat_engine(paths, settings)

    return load


class Session:
    """An open profile: the API, the lock that serialises it, and what the status bar shows."""

    def __init__(self, api: MemosAPI, key_method: str, model_name: str) -> None:
        self.api = api
        self.key_method = key_method
        self.model_name = model_name
        self.lock = threading.RLock()

    def locked_stream(self, it: Iterator[str]) -> Iterator[str]:
        """Yield from ``it`` holding the lock only while each piece is produced."""
        while True:
            with self.lock:
                try:
                    piece = next(it)
                except StopIteration:
                    return
            yield piece

    def close(self) -> None:
        with self.lock:
            self.api.close()


def open_session(
    paths: Paths,
    settings: Settings,
    profile: str,
    *,
    passphrase: str | None = None,
    embedder_factory: EmbedderFactory | None = None,
    engine_factory: EngineFactory | None = None,
) -> Session:
    """Unlock and open the profile (raises WrongPassphraseError & co. with their hints)."""
    from memos_desktop.api import open_api

    def provide(prompt: str) -> str:
        if passphrase is None:
            raise PassphraseRequiredError(
                "this profile is protected by a passphrase", hint="type it on the unlock screen"
            )
        return passphrase

    api = open_api(
        paths,
        settings,
        profile=profile,
        passphrase_provider=provide,
        embedder_factory=embedder_factory or default_embedder_factory(paths, settings),
        engine_factory=engine_factory or default_engine_factory(paths, settings),
        resident_index=True,
    )
    st = start_state(paths, profile)
    return Session(api, st.key_method or "passphrase", settings.models.chat)

"""The one session factory: unlock and open a profile, build its embedder and chat engine,
and hand back the API. The CLI, the TUI (and later the daemon and MCP server) open profiles
only through here.

Design rules:
- Importing this module is cheap (no crypto, database or model code): the terminal app calls
  :func:`start_state` before its first paint. The heavy imports happen when a profile opens.
- The embedder is built when the profile opens; a missing embedding model is not an error
  (memories are found by words until it is there). The chat engine loads lazily, on first use.
- Thread safety is the API's own (``MemosAPI.lock``); a :class:`Session` only adds what a
  front end shows about it (key method, model name).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from memos_desktop.config import Paths, Settings, env_passphrase
from memos_desktop.errors import (
    EngineError,
    ModelNotFoundError,
    ModelWriteError,
    PassphraseRequiredError,
)

if TYPE_CHECKING:
    from memos_desktop.api.facade import MemosAPI
    from memos_desktop.engines.base import ChatEngine, Embedder

KEYFILE = "key.json"  # store.profile.KEYFILE (checked by a test)

EngineFactory = Callable[[], "ChatEngine"]
EmbedderFactory = Callable[[], "Embedder | None"]
PassphraseProvider = Callable[[str], str]


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
    if method == "passphrase" and not env_passphrase():
        return StartState("unlock", method)
    return StartState("open", method)


def default_embedder_factory(
    paths: Paths,
    settings: Settings,
    on_missing: Callable[[EngineError], object] | None = None,
) -> EmbedderFactory:
    """The settings' embedding model; None (words-only search) when it is not there or cannot
    be written (a full disk), after telling ``on_missing``."""

    def load() -> Embedder | None:
        from memos_desktop.engines.loader import load_embedder

        try:
            return load_embedder(paths, settings.models.embedding, settings)
        except (ModelNotFoundError, ModelWriteError) as exc:
            if on_missing is not None:
                on_missing(exc)
            return None
        except EngineError as exc:
            if not settings.models.embedding.startswith("openai:"):
                raise
            if on_missing is not None:  # a server's embeddings: words only while it is down
                on_missing(exc)
            return None

    return load


def default_engine_factory(paths: Paths, settings: Settings) -> EngineFactory:
    """The settings' chat model, on the back end its format and the platform call for."""

    def load() -> ChatEngine:
        from memos_desktop.engines.loader import load_chat_engine

        return load_chat_engine(paths, settings)

    return load


def open_api(
    paths: Paths,
    settings: Settings,
    *,
    profile: str | None = None,
    passphrase_provider: PassphraseProvider | None = None,
    embedder_factory: EmbedderFactory | None = None,
    engine_factory: EngineFactory | None = None,
    resident_index: bool = False,
) -> MemosAPI:
    """Unlock and open the profile (raises WrongPassphraseError & co. with their hints) and
    build the API on it. Factories default to the settings' models."""
    from memos_desktop.api.facade import MemosAPI
    from memos_desktop.store.profile import open_profile

    store = open_profile(
        paths,
        profile or settings.profile,
        settings,
        passphrase_provider=passphrase_provider,
        resident_index=resident_index,
    )
    try:
        embedder = (embedder_factory or default_embedder_factory(paths, settings))()
    except Exception:
        store.close()
        raise
    return MemosAPI(
        store, embedder, engine_factory=engine_factory or default_engine_factory(paths, settings)
    )


class Session:
    """An open profile for a long-lived front end: the API and what the status bar shows."""

    def __init__(self, api: MemosAPI, key_method: str, model_name: str) -> None:
        self.api = api
        self.key_method = key_method
        self.model_name = model_name

    @property
    def lock(self) -> threading.RLock:
        """The API's own lock: hold it to make several calls one step."""
        return self.api.lock

    def close(self) -> None:
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
    """Open the profile for a long-lived process (the resident vector index is built)."""

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
        embedder_factory=embedder_factory,
        engine_factory=engine_factory,
        resident_index=True,
    )
    st = start_state(paths, profile)
    return Session(api, st.key_method or "passphrase", settings.models.chat)

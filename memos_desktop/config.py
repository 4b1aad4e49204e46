"""Settings (TOML), where state lives on disk, and the secrets the environment hands in.

Design rules:
- One environment variable, ``MEMOS_DESKTOP_HOME``, relocates *all* state (config, data, state,
  cache, logs); tests always point it at a temp dir. Nothing here does I/O at import time. An
  invalid settings file raises :class:`ConfigError` naming the file and the key.
- A secret given in the environment (``MEMOS_DESKTOP_PASSPHRASE``) is read once, at start, and
  taken out of it (:func:`take_env_secrets`) before any child process can start, so no child
  inherits it; its bytes in the process's original environment block are zeroed, so
  ``/proc/<pid>/environ`` no longer shows it. Core dumps are turned off first
  (:func:`forbid_core_dumps`): a core file would hold the passphrase and decrypted memories.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import logging
import os
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
import tomli_w

from memos_desktop.errors import ConfigError

APP_NAME = "memos-desktop"
HOME_ENV = "MEMOS_DESKTOP_HOME"
PASSPHRASE_ENV = "MEMOS_DESKTOP_PASSPHRASE"
# A backup's own passphrase (`memos-desktop backup --passphrase`), for scripts.
BACKUP_PASSPHRASE_ENV = "MEMOS_DESKTOP_BACKUP_PASSPHRASE"
# The new passphrase of `memos-desktop passphrase`, for scripts.
NEW_PASSPHRASE_ENV = "MEMOS_DESKTOP_NEW_PASSPHRASE"
# The bearer token every request to `memos-desktop mcp --http` must carry.
MCP_TOKEN_ENV = "MEMOS_DESKTOP_MCP_TOKEN"
# A cube file's passphrase (`memos-desktop cubes export --passphrase`, `cubes import`).
CUBE_PASSPHRASE_ENV = "MEMOS_DESKTOP_CUBE_PASSPHRASE"
SECRET_ENVS = (
    PASSPHRASE_ENV,
    BACKUP_PASSPHRASE_ENV,
    NEW_PASSPHRASE_ENV,
    MCP_TOKEN_ENV,
    CUBE_PASSPHRASE_ENV,
)
CONFIG_FILE = "config.toml"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Paths:
    config_dir: Path
    data_dir: Path
    state_dir: Path
    cache_dir: Path
    log_dir: Path

    @property
    def config_file(self) -> Path:
        return self.config_dir / CONFIG_FILE

    @property
    def profiles_dir(self) -> Path:
        return self.data_dir / "profiles"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    def profile_dir(self, profile: str) -> Path:
        return self.profiles_dir / profile

    def ensure(self) -> None:
        for p in (self.config_dir, self.data_dir, self.state_dir, self.cache_dir, self.log_dir):
            p.mkdir(parents=True, exist_ok=True, mode=0o700)


def resolve_paths(env: dict[str, str] | None = None) -> Paths:
    env = dict(os.environ) if env is None else env
    home = env.get(HOME_ENV)
    if home:
        root = Path(home).expanduser().resolve()
        return Paths(
            config_dir=root / "config",
            data_dir=root / "data",
            state_dir=root / "state",
            cache_dir=root / "cache",
            log_dir=root / "logs",
        )
    return Paths(
        config_dir=Path(platformdirs.user_config_dir(APP_NAME)),
        data_dir=Path(platformdirs.user_data_dir(APP_NAME)),
        state_dir=Path(platformdirs.user_state_dir(APP_NAME)),
        cache_dir=Path(platformdirs.user_cache_dir(APP_NAME)),
        log_dir=Path(platformdirs.user_log_dir(APP_NAME)),
    )


# --- settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoreSettings:
    # Page cache per connection, MiB. DESIGN: KNN over 20k rows went 59 ms -> 5.6 ms at 256 MiB.
    cache_mib: int = 256
    # "full" fsyncs the WAL at every commit (survives power loss); "normal" survives crashes only.
    durability: str = "full"
    busy_timeout_ms: int = 15000


@dataclass(frozen=True)
class KeySettings:
    # "auto": OS keyring when it has a real backend, else passphrase.
    method: str = "auto"


@dataclass(frozen=True)
class SearchSettings:
    # Weighted RRF. BM25's weight moves between fts_weight_min and fts_weight with the query's
    # lexical evidence (memory/search.py). Chosen on LoCoMo conversations 1-5 and the dev
    # halves of bench/data/preferences.json and changes.json; reported on the other halves.
    rrf_k: float = 10.0
    fts_weight: float = 1.5
    fts_weight_min: float = 0.75
    vec_weight: float = 0.75
    recency_weight: float = 0.15
    recency_half_life_days: float = 90.0
    importance_weight: float = 0.15
    # Relevance floor: a hit needs this share of the best hit's cosine similarity (0 = off).
    relevance_floor: float = 0.3
    # Time in questions: a memory inside the question's window ("last week") is boosted by
    # 1 + time_weight; an ended state (valid_to passed) is multiplied by ended_weight for a
    # present-tense question, by 1 + ended_past_boost for a past-tense one.
    time_weight: float = 1.0
    ended_weight: float = 0.5
    ended_past_boost: float = 0.5
    # Preferences and instructions nearest a request that always get a place in the results.
    preference_slots: int = 3
    # Rank by memory type (records.TYPE_WEIGHT: raw episodes below what was read from them).
    type_weights: bool = True
    # Cosine similarity above which two hits count as the same memory (kept: the better one).
    dedupe_similarity: float = 0.97
    # Candidates fetched from each retriever per requested result.
    candidate_factor: int = 4
    # Query terms found in more than fts_max_docs memories (or more than the fts_max_df share)
    # are dropped from the BM25 query (the rarest two always stay): they carry little IDF
    # weight but make BM25 score a third of the corpus (a 3-4 word query matched 3,247 of 10k
    # LoCoMo texts; 18 ms p50 at 100k). The share is off by default: on LoCoMo a 10% share cut
    # R@10 from 0.710 to 0.699, while the absolute cap bounds the cost at scale.
    fts_max_docs: int = 2000
    fts_max_df: float = 1.0
    # BM25 weight of a memory's retrieval-only context (e.g. the turn before it).
    fts_context_weight: float = 0.6


@dataclass(frozen=True)
class ModelSettings:
    chat: str = "gemma3-270m"
    embedding: str = "all-minilm-l6-v2"


@dataclass(frozen=True)
class EngineSettings:
    """llama.cpp settings; 0 threads means llama-cpp-python's default."""

    n_ctx: int = 4096
    n_threads: int = 0
    n_threads_batch: int = 0
    type_k: str = "f16"
    type_v: str = "f16"
    flash_attn: bool = False
    # How prompts are written for the chat model: "completion" (a base model: a short few-shot
    # prompt it continues, one-line answers), "chat" (an instruct model: its chat template), or
    # "auto" (the catalog's word, else the model file's metadata).
    prompt_style: str = "auto"
    # Activation memory (saved KV states) kept per profile, least recently used evicted first.
    activation_cache_mib: int = 512


@dataclass(frozen=True)
class OpenAISettings:
    """A local OpenAI-compatible server (Ollama, LM Studio, llama-server, vLLM), used for a
    model named ``openai:NAME``. Loopback only unless ``allow_remote``; the API key is read
    from the environment variable ``api_key_env`` names, never written here."""

    base_url: str = "http://127.0.0.1:8080"
    api_key_env: str = ""
    allow_remote: bool = False
    n_ctx: int = 0  # 0: what the server reports, else 4096
    timeout_s: float = 120.0


@dataclass(frozen=True)
class DaemonSettings:
    """The background daemon (issue 12)."""

    # Work pauses while a front end answers and for this long after its last answer ends
    # (``yield_to_answers = false``: it never pauses; for measuring what pausing buys).
    yield_to_answers: bool = True
    idle_s: float = 5.0
    # How often an idle (or paused) daemon looks at the queue again.
    poll_s: float = 1.0
    # How often the maintenance sweep queues merge, conflict, summary, decay and KV jobs.
    sweep_interval_s: float = 3600.0
    # Memories unused (never retrieved) for this many days, not pinned and of low importance,
    # are archived (never deleted).
    decay_days: float = 180.0
    decay_max_importance: float = 0.3
    # A conversation is summarised once it has this many messages.
    summary_min_messages: int = 6
    # The daemon runs at this nice level (0: as the person's own processes).
    nice: int = 10


@dataclass(frozen=True)
class UiSettings:
    theme: str = "textual-dark"


@dataclass(frozen=True)
class McpClientSettings:
    """One MCP client's grant (``[mcp.clients.NAME]``): the cubes it may read (search, get,
    the core profile) and those it may also write (add, correct, forget), by name; "*" is
    every cube. ``memos-desktop mcp grant`` keeps its grants in the encrypted database."""

    read: tuple[str, ...] = ()
    write: tuple[str, ...] = ()


@dataclass(frozen=True)
class McpSettings:
    clients: dict[str, McpClientSettings] = field(default_factory=dict)
    # `memos-desktop mcp --http` listens on 127.0.0.1 (never another address) at this port.
    http_port: int = 8765


@dataclass(frozen=True)
class Settings:
    profile: str = "default"
    store: StoreSettings = field(default_factory=StoreSettings)
    keys: KeySettings = field(default_factory=KeySettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    models: ModelSettings = field(default_factory=ModelSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    ui: UiSettings = field(default_factory=UiSettings)
    openai: OpenAISettings = field(default_factory=OpenAISettings)
    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    keymap: dict[str, str] = field(default_factory=dict)
    mcp: McpSettings = field(default_factory=McpSettings)


_SECTIONS: dict[str, type] = {
    "store": StoreSettings,
    "keys": KeySettings,
    "search": SearchSettings,
    "models": ModelSettings,
    "engine": EngineSettings,
    "ui": UiSettings,
    "mcp": McpSettings,
    "openai": OpenAISettings,
    "daemon": DaemonSettings,
}

_CHOICES: dict[str, tuple[str, ...]] = {
    "store.durability": ("full", "normal"),
    "keys.method": ("auto", "keyring", "passphrase"),
    "engine.type_k": ("f16", "f32", "q8_0", "q4_0"),
    "engine.type_v": ("f16", "f32", "q8_0", "q4_0"),
    "engine.prompt_style": ("auto", "completion", "chat"),
}


def _coerce(path: Path, key: str, want: Any, value: Any) -> Any:
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if want in (int, float, str, bool) and (
        not isinstance(value, want) or (want is int and isinstance(value, bool))
    ):
        raise ConfigError(
            f"{path}: key '{key}' must be {want.__name__}, got {type(value).__name__} ({value!r})",
            hint=f"fix or remove '{key}' in {path}",
        )
    if key in _RANGES and not _RANGES[key][0] <= value <= _RANGES[key][1]:
        lo, hi = _RANGES[key]
        raise ConfigError(
            f"{path}: key '{key}' must be between {lo:g} and {hi:g}, got {value!r}",
            hint=f"fix or remove '{key}' in {path}",
        )
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ConfigError(
            f"{path}: key '{key}' must be one of {', '.join(_CHOICES[key])}, got {value!r}",
            hint=f"fix or remove '{key}' in {path}",
        )
    return value


# Numeric settings with a meaningful range: (low, high), both inclusive.
_RANGES: dict[str, tuple[float, float]] = {
    "search.relevance_floor": (0.0, 1.0),
    "search.fts_weight_min": (0.0, 100.0),
    "search.time_weight": (0.0, 100.0),
    "search.ended_weight": (0.0, 1.0),
    "search.ended_past_boost": (0.0, 100.0),
    "search.preference_slots": (0, 50),
    "search.dedupe_similarity": (-1.0, 1.01),
    "search.vec_weight": (0.0, 100.0),
    "search.fts_weight": (0.0, 100.0),
    "mcp.http_port": (1024, 65535),
    "openai.n_ctx": (0, 10_000_000),
    "openai.timeout_s": (0.1, 3600.0),
    "daemon.idle_s": (0.0, 86400.0),
    "daemon.poll_s": (0.05, 3600.0),
    "daemon.sweep_interval_s": (1.0, 30 * 86400.0),
    "daemon.decay_days": (1.0, 36500.0),
    "daemon.decay_max_importance": (0.0, 1.0),
    "daemon.summary_min_messages": (2, 10000),
    "daemon.nice": (0, 19),
}

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _build(cls: Any, data: dict[str, Any], path: Path, prefix: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(
                f"{path}: unknown key '{full}'",
                hint=f"remove '{full}' from {path}; known keys: {', '.join(sorted(fields))}",
            )
        ftype = fields[key].type
        if ftype == "dict[str, str]":
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise ConfigError(
                    f"{path}: table '{full}' must map binding ids to key names (strings)",
                    hint=f'write it as [{full}] then lines like quit = "ctrl+q"',
                )
            kwargs[key] = dict(value)
        elif ftype == "dict[str, McpClientSettings]":
            kwargs[key] = _mcp_clients(value, path, full)
        elif isinstance(ftype, str) and ftype in _TYPES:
            kwargs[key] = _coerce(path, full, _TYPES[ftype], value)
        else:
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{path}: '{full}' must be a table ([{full}])",
                    hint=f"write it as a [{full}] section in {path}",
                )
            kwargs[key] = _build(_SECTIONS[key], value, path, f"{full}.")
    return cls(**kwargs)


# An MCP client's name, as given with `--client` in the host's launch command.
MCP_CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def _mcp_clients(value: Any, path: Path, full: str) -> dict[str, McpClientSettings]:
    example = f'write it as [{full}.NAME] then read = ["default"] and/or write = ["work"]'
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: '{full}' must be a table of clients", hint=example)
    out: dict[str, McpClientSettings] = {}
    for name, grant in value.items():
        where = f"{full}.{name}"
        if not MCP_CLIENT_NAME.fullmatch(name):
            raise ConfigError(
                f"{path}: '{where}': {name!r} is not a client name",
                hint="use 1-64 letters, digits, '.', '_' or '-' (the --client NAME of the host)",
            )
        if not isinstance(grant, dict):
            raise ConfigError(f"{path}: '{where}' must be a table", hint=example)
        unknown = sorted(set(grant) - {"read", "write"})
        if unknown:
            raise ConfigError(
                f"{path}: unknown key '{where}.{unknown[0]}'",
                hint=f"a client's grant has only read and write (lists of cube names); {example}",
            )
        lists: dict[str, tuple[str, ...]] = {}
        for k in ("read", "write"):
            cubes = grant.get(k, [])
            if not isinstance(cubes, list) or not all(
                isinstance(c, str) and c.strip() for c in cubes
            ):
                raise ConfigError(
                    f"{path}: '{where}.{k}' must be a list of cube names, got {cubes!r}",
                    hint=f'e.g. {k} = ["default"] ("*" for every cube)',
                )
            lists[k] = tuple(c.strip() for c in cubes)
        out[name] = McpClientSettings(**lists)
    return out


def load_settings(paths: Paths) -> Settings:
    path = paths.config_file
    if not path.exists():
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML ({exc})", hint=f"fix the syntax or delete {path}"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from exc
    settings: Settings = _build(Settings, data, path, "")
    return settings


def save_settings(paths: Paths, settings: Settings) -> None:
    """Write settings atomically (temp file + rename)."""
    paths.config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = dataclasses.asdict(settings)
    tmp = paths.config_file.with_suffix(".toml.tmp")
    tmp.write_text(tomli_w.dumps(data), encoding="utf-8")
    os.replace(tmp, paths.config_file)


def setup_logging(paths: Paths, level: int = logging.INFO) -> None:
    """Log to a file under the log dir. Never log memory text or keys (see STYLE.md)."""
    paths.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    root = logging.getLogger("memos_desktop")
    if any(isinstance(h, logging.FileHandler) for h in root.handlers):
        return
    handler = logging.FileHandler(paths.log_dir / "memos-desktop.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)


# --- secrets from the environment, and core dumps -------------------------------------------

# The environment is process-wide state already; the secrets taken out of it live here, in
# the process, for the same lifetime (the one module-level state of the package, on purpose).
_taken: dict[str, str | None] = {}

PR_SET_DUMPABLE = 4  # <linux/prctl.h>
PR_GET_DUMPABLE = 3


def forbid_core_dumps() -> None:
    """No core file for this process from now on: RLIMIT_CORE 0 (soft and hard) and, on
    Linux, not dumpable (no core, no ptrace attach by other processes of the user, and its
    /proc files are no longer readable by them). Called before a key is unlocked and when a
    passphrase is taken from the environment; never turned back on."""
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
                log.warning("prctl(PR_SET_DUMPABLE) failed: errno %d", ctypes.get_errno())
        except (OSError, AttributeError) as exc:  # pragma: no cover - every Linux libc has it
            log.warning("could not make the process non-dumpable: %s", exc)


def dumpable() -> bool | None:
    """Whether the kernel would write a core of this process (Linux; None elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    return bool(ctypes.CDLL(None).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0))


def _zero_environ_value(name: str) -> None:
    """Overwrite the value of ``name`` in the C environment in place (the bytes the kernel
    shows in /proc/<pid>/environ, for the variables the process started with)."""
    if os.name != "posix":
        return
    raw = os.environb.get(name.encode())
    if not raw:
        return
    try:
        libc = ctypes.CDLL(None)
        libc.getenv.restype = ctypes.c_void_p
        libc.getenv.argtypes = [ctypes.c_char_p]
        addr = libc.getenv(name.encode())
        if addr:
            ctypes.memset(addr, 0, len(raw))
    except (OSError, AttributeError) as exc:  # pragma: no cover
        log.warning("could not zero %s in the environment: %s", name, exc)


def take_env_secrets() -> None:
    """Move the secret variables out of the environment into the process. Front ends call
    it first thing (before anything could start a child process). A variable set again
    later (several commands in one process, as in tests) replaces what was taken."""
    for name in SECRET_ENVS:
        value = os.environ.get(name)
        if value is None:
            continue
        _taken[name] = value
        forbid_core_dumps()
        _zero_environ_value(name)
        os.environ.pop(name, None)


def env_secret(name: str) -> str | None:
    """The secret variable ``name``: from the environment if it is still there (library use,
    tests), else the value :func:`take_env_secrets` took out of it."""
    value = os.environ.get(name)
    if value is not None:
        return value or None
    return _taken.get(name) or None


def env_passphrase() -> str | None:
    return env_secret(PASSPHRASE_ENV)


def forget_env_secrets() -> None:
    """Drop what :func:`take_env_secrets` took (tests run many commands in one process)."""
    _taken.clear()

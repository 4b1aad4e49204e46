"""Settings (TOML) and where state lives on disk.

Design rule: one environment variable, ``MEMOS_DESKTOP_HOME``, relocates *all* state (config,
data, state, cache, logs); tests always point it at a temp dir. Nothing here does I/O at import
time. An invalid settings file raises :class:`ConfigError` naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import logging
import os
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
    # Fusion tuned on LoCoMo (bench/locomo.py): R@10 0.548 at rrf_k 60 / equal weights,
    # 0.690 here, with the previous-turn context in BM25.
    rrf_k: float = 10.0
    fts_weight: float = 1.0
    vec_weight: float = 0.5
    recency_weight: float = 0.15
    recency_half_life_days: float = 90.0
    importance_weight: float = 0.15
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
class UiSettings:
    theme: str = "textual-dark"


@dataclass(frozen=True)
class Settings:
    profile: str = "default"
    store: StoreSettings = field(default_factory=StoreSettings)
    keys: KeySettings = field(default_factory=KeySettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    models: ModelSettings = field(default_factory=ModelSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    ui: UiSettings = field(default_factory=UiSettings)
    keymap: dict[str, str] = field(default_factory=dict)


_SECTIONS: dict[str, type] = {
    "store": StoreSettings,
    "keys": KeySettings,
    "search": SearchSettings,
    "models": ModelSettings,
    "engine": EngineSettings,
    "ui": UiSettings,
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
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ConfigError(
            f"{path}: key '{key}' must be one of {', '.join(_CHOICES[key])}, got {value!r}",
            hint=f"fix or remove '{key}' in {path}",
        )
    return value


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

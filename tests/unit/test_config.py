from __future__ import annotations

from pathlib import Path

import pytest

from memos_desktop.config import Settings, load_settings, resolve_paths, save_settings
from memos_desktop.errors import ConfigError


def write(text: str) -> Path:
    paths = resolve_paths()
    paths.config_dir.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(text)
    return paths.config_file


def test_home_env_relocates_everything(isolated_home: Path) -> None:
    p = resolve_paths()
    for d in (p.config_dir, p.data_dir, p.state_dir, p.cache_dir, p.log_dir):
        assert isolated_home in d.parents


def test_defaults_without_file() -> None:
    assert load_settings(resolve_paths()) == Settings()


def test_prompt_style_setting() -> None:
    assert Settings().engine.prompt_style == "auto"
    write('[engine]\nprompt_style = "completion"\n')
    assert load_settings(resolve_paths()).engine.prompt_style == "completion"


def test_valid_file_and_roundtrip() -> None:
    write('profile = "work"\n[search]\nrrf_k = 30\n[keymap]\nquit = "ctrl+x"\n')
    s = load_settings(resolve_paths())
    assert s.profile == "work" and s.search.rrf_k == 30.0 and s.keymap == {"quit": "ctrl+x"}
    save_settings(resolve_paths(), s)
    assert load_settings(resolve_paths()) == s


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[search]\nrrf_kk = 3\n", "unknown key 'search.rrf_kk'"),
        ("[store]\ncache_mib = 'big'\n", "'store.cache_mib' must be int"),
        ("[store]\ndurability = 'sometimes'\n", "'store.durability' must be one of full, normal"),
        ("search = 3\n", "'search' must be a table"),
        ("[search]\nrelevance_floor = 2\n", "'search.relevance_floor' must be between 0 and 1"),
        (
            "[engine]\nprompt_style = 'base'\n",
            "'engine.prompt_style' must be one of auto, completion, chat",
        ),
        ("profile = [\n", "not valid TOML"),
    ],
)
def test_invalid_config_names_file_and_key(text: str, match: str) -> None:
    path = write(text)
    with pytest.raises(ConfigError, match=match) as ei:
        load_settings(resolve_paths())
    assert str(path) in str(ei.value) and ei.value.exit_code == 3

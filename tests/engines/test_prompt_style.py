"""Which kind of model the engine has (base: completion prompts; instruct: its chat template),
from the person's setting, the catalog and the GGUF's metadata; and what a completion model
is given and never shows."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from memos_desktop.config import EngineSettings, ModelSettings, Settings, resolve_paths
from memos_desktop.engines.base import ChatMessage
from memos_desktop.engines.catalog import CATALOG, DEFAULT_CHAT
from memos_desktop.engines.chat_format import PromptFormat, prompt_style
from memos_desktop.engines.llamacpp import LlamaCppEngine
from memos_desktop.errors import InvalidInputError
from tests.engines.conftest import TINY
from tests.fixtures.tiny_model import write_tiny_model
from tests.model_fixtures import GEMMA, GEMMA_BASE


@pytest.mark.parametrize(
    ("setting", "catalog", "names", "template", "want"),
    [
        ("auto", "", ("Gemma 3 270m", "gemma-3-270m-q4_k_m"), False, "completion"),
        ("auto", "", ("Gemma 3 270m It", "gemma-3-270m-it-Q4_K_M"), True, "chat"),
        ("auto", "", ("Qwen2.5 0.5B Instruct",), True, "chat"),
        ("auto", "", ("some-model-it",), False, "chat"),  # instruct, but no template in the file
        ("auto", "", ("Qwen2.5 0.5B", "qwen2.5-0.5b-base"), True, "completion"),  # a base model
        ("auto", "", ("my model",), True, "chat"),
        ("auto", "", ("my model",), False, "completion"),
        ("auto", "completion", ("Qwen2.5 0.5B Instruct",), True, "completion"),
        ("chat", "completion", ("Gemma 3 270m",), False, "chat"),  # the person's setting wins
        ("completion", "", ("Qwen2.5 0.5B Instruct",), True, "completion"),
        ("auto", "", ("submit", "credit"), False, "completion"),  # "it" only as a whole word
    ],
)
def test_prompt_style_rules(
    setting: str, catalog: str, names: tuple[str, ...], template: bool, want: str
) -> None:
    assert prompt_style(setting, catalog=catalog, names=names, has_template=template) == want


def test_a_bad_prompt_style_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="unknown prompt style 'base'") as ei:
        prompt_style("base")
    assert "auto, completion, chat" in (ei.value.hint or "")


def test_the_packaged_gemma_is_a_base_model_in_the_catalog() -> None:
    assert CATALOG[DEFAULT_CHAT].prompt_style == "completion"
    assert CATALOG[DEFAULT_CHAT].to_json()["prompt_style"] == "completion"
    assert all(e.prompt_style == "" for e in CATALOG.values() if e.id != DEFAULT_CHAT)


def test_the_engine_reads_its_kind_from_the_file(tiny_path: Path, sha_cache: Path, tmp_path: Path):
    with LlamaCppEngine(tiny_path, TINY, sha_cache_file=sha_cache) as e:
        assert e.prompt_style == "chat" and e.chat_format == "template"  # a ChatML template
    bare = write_tiny_model(tmp_path / "bare.gguf", chat_template=None)
    with LlamaCppEngine(bare, TINY, sha_cache_file=sha_cache) as e:
        assert e.prompt_style == "completion" and e.chat_format == "completion"
    forced = dataclasses.replace(TINY, prompt_style="completion")
    with LlamaCppEngine(tiny_path, forced, sha_cache_file=sha_cache) as e:
        assert e.prompt_style == "completion"
    with pytest.raises(InvalidInputError, match="prompt style"):
        LlamaCppEngine(tiny_path, dataclasses.replace(TINY, prompt_style="x"))


def test_the_loader_takes_the_setting_over_the_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's path: settings -> catalog -> loader -> engine (the packaged Gemma)."""
    from memos_desktop.engines import loader

    made: list[object] = []

    class Spy:
        def __init__(self, path: Path, settings: object, **kw: object) -> None:
            made.append(settings)

    monkeypatch.setattr("memos_desktop.engines.llamacpp.LlamaCppEngine", Spy)
    paths = resolve_paths()
    for setting, want in (("auto", "completion"), ("chat", "chat"), ("completion", "completion")):
        s = Settings(
            models=ModelSettings(chat=DEFAULT_CHAT),
            engine=EngineSettings(prompt_style=setting),
        )
        loader.load_chat_engine(paths, s)
        assert made[-1].prompt_style == want  # type: ignore[attr-defined]


def test_completion_format_has_no_turn_markers_and_a_stable_prefix() -> None:
    fmt = PromptFormat("completion")
    prefix = [ChatMessage("system", "Examples.\n\nNotes:\n- You live in Porto.")]
    msgs = [*prefix, ChatMessage("user", "Question: Where do I live?\nAnswer:")]
    text = fmt.render(msgs)
    assert text == "Examples.\n\nNotes:\n- You live in Porto.\nQuestion: Where do I live?\nAnswer:"
    head, tail = fmt.split(msgs)
    assert head == fmt.prefix_text(prefix) and head + tail == text
    assert "<" not in text


def test_special_tokens_end_a_base_models_answer(gemma_path: Path, sha_cache: Path) -> None:
    """Rendered, a control token is no text and what follows it is a turn the model made up
    (the issue's "mendatanguser"): a base model's answer ends at any special token; a chat
    model's at its turn markers and end of generation."""
    with LlamaCppEngine(gemma_path, GEMMA_BASE, sha_cache_file=sha_cache) as base:
        assert base.prompt_style == "completion"

        markers = ["<start_of_turn>", "<end_of_turn>", "<bos>", "<unused0>", "<start_of_image>"]
        words = ["\n", " Porto", "<"]
        tok = {t: base.tokenize(t) for t in [*markers, *words]}
        assert all(len(ids) == 1 for ids in tok.values())
        assert all(base.ends_answer(tok[m][0]) for m in markers)
        assert not any(base.ends_answer(tok[w][0]) for w in words)
    with LlamaCppEngine(gemma_path, GEMMA, sha_cache_file=sha_cache) as chat:
        assert chat.prompt_style == "chat"
        assert all(chat.ends_answer(tok[m][0]) for m in ["<start_of_turn>", "<end_of_turn>"])
        assert not any(chat.ends_answer(tok[w][0]) for w in ["<unused0>", " Porto"])

"""The OpenAI-compatible engine against a real server on 127.0.0.1: llama-cpp-python's own
``llama_cpp.server`` serving the tiny random GGUF, started once for this module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from memos_desktop.config import OpenAISettings, Settings
from memos_desktop.engines.base import (
    CancelToken,
    ChatEngine,
    ChatMessage,
    Embedder,
    SamplingParams,
    parse_options,
    with_options,
)
from memos_desktop.engines.openai_compat import OpenAICompatEngine
from memos_desktop.engines.openai_http import OpenAIClient, check_base_url, is_loopback
from memos_desktop.errors import ConfigError, EngineError, InvalidInputError, ModelNotFoundError
from tests.fixtures.openai_server import Server, closed_port, serve

HELLO = [ChatMessage("system", "You are terse."), ChatMessage("user", "Say hello to the user")]


@pytest.fixture(scope="module")
def server(tiny_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("oai-server") / "server.log"
    with serve(tiny_path, log) as s:
        yield s


def settings_for(server: Server, **kw: object) -> OpenAISettings:
    return OpenAISettings(base_url=server.base_url, n_ctx=server.n_ctx, **kw)  # type: ignore[arg-type]


@pytest.fixture
def engine(server: Server) -> Iterator[OpenAICompatEngine]:
    e = OpenAICompatEngine(f"openai:{server.model}", settings_for(server))
    yield e
    e.close()


def test_the_server_lists_its_models_and_the_engine_is_a_chat_engine(
    server: Server, engine: OpenAICompatEngine
) -> None:
    client = OpenAIClient(server.base_url)
    try:
        assert [m.id for m in client.models()] == ["openai:tiny"]
    finally:
        client.close()
    assert isinstance(engine, ChatEngine)
    assert engine.model_id == "openai:tiny"
    assert engine.prompt_style == "chat"  # an instruct model behind a chat API
    assert engine.n_ctx == server.n_ctx
    assert engine.activation_memory is False
    with pytest.raises(EngineError, match="activation memory"):
        engine.save_prefix_state(HELLO[:1])


def test_streaming_gives_the_same_answer_as_one_whole_reply(engine: OpenAICompatEngine) -> None:
    s = SamplingParams.greedy(max_tokens=12)
    chunks = list(engine.chat_stream(HELLO, s))
    pieces = [c for c in chunks if c.stats is None]
    assert len(pieces) >= 2, "the answer arrived in one piece: not streamed"
    stats = chunks[-1].stats
    assert stats is not None and stats.finish_reason in ("length", "stop")
    assert 1 <= stats.completion_tokens <= 12
    assert stats.prompt_tokens > 0 and stats.prefix_tokens_reused == 0
    streamed = "".join(c.text for c in chunks)
    # The same greedy request, not streamed, straight to the server.
    whole = engine.client.chat(
        {
            "model": "tiny",
            "messages": [{"role": m.role, "content": m.content} for m in HELLO],
            "temperature": 0.0,
            "top_k": 1,
            "max_tokens": 12,
            "seed": 0,
        }
    )
    assert streamed == whole["choices"][0]["message"]["content"]
    assert streamed  # noise from a random model, but some


def test_a_stop_string_ends_the_answer_before_it(engine: OpenAICompatEngine) -> None:
    s = SamplingParams.greedy(max_tokens=24)
    full = engine.chat(HELLO, s)
    assert len(full) > 4
    stop = full[3:5]
    cut = engine.chat(HELLO, SamplingParams.greedy(max_tokens=24, stop=(stop,)))
    assert stop not in cut and full.startswith(cut)


def test_cancelling_mid_stream_closes_it_and_the_server_serves_the_next(
    engine: OpenAICompatEngine,
) -> None:
    cancel = CancelToken()
    got = []
    stream = engine.chat_stream(HELLO, SamplingParams(max_tokens=900, seed=3), cancel)
    for chunk in stream:
        got.append(chunk)
        if len(got) == 3:
            cancel.cancel()
    stats = got[-1].stats
    assert stats is not None and stats.finish_reason == "cancelled"
    assert stats.completion_tokens <= 4  # stopped within a token of the cancel, not at 900
    # The engine is free again and the server answers the next request at once.
    assert engine.chat(HELLO, SamplingParams.greedy(max_tokens=4))


def test_dropping_a_stream_closes_it(engine: OpenAICompatEngine) -> None:
    stream = engine.chat_stream(HELLO, SamplingParams(max_tokens=900, seed=4))
    next(iter(stream))
    stream.close()  # type: ignore[attr-defined]  # the consumer went away (Escape in the app)
    assert engine.chat(HELLO, SamplingParams.greedy(max_tokens=3))


def test_structured_answers_follow_the_schema(engine: OpenAICompatEngine) -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}},
        "required": ["n"],
    }
    value = engine.complete_json(HELLO, schema, SamplingParams.greedy(40))
    assert isinstance(value["n"], int)


def test_a_model_the_server_does_not_serve_is_named(server: Server) -> None:
    with pytest.raises(ModelNotFoundError, match="does not serve 'gpt-5'") as err:
        OpenAICompatEngine("openai:gpt-5", settings_for(server))
    assert "openai:tiny" in (err.value.hint or "")


def test_no_server_is_a_clear_error() -> None:
    port = closed_port()
    with pytest.raises(EngineError) as err:
        OpenAICompatEngine("openai:tiny", OpenAISettings(base_url=f"http://127.0.0.1:{port}"))
    assert str(err.value).startswith(
        f"no server at http://127.0.0.1:{port}: start it or change [openai] base_url"
    )


def test_a_url_off_this_machine_needs_allow_remote() -> None:
    assert is_loopback("http://127.0.0.1:8080") and is_loopback("http://localhost:11434/v1")
    assert is_loopback("http://[::1]:1234")
    assert not is_loopback("http://192.168.1.20:8080")
    with pytest.raises(ConfigError, match="not on this machine"):
        check_base_url("http://192.168.1.20:8080", allow_remote=False)
    assert check_base_url("http://192.168.1.20:8080/v1/", allow_remote=True) == (
        "http://192.168.1.20:8080/v1"
    )
    with pytest.raises(ConfigError, match="not an http"):
        check_base_url("ftp://127.0.0.1", allow_remote=False)
    from memos_desktop.api import model_notice

    remote = Settings(openai=OpenAISettings(base_url="http://192.168.1.20:8080", allow_remote=True))
    assert model_notice(remote, "openai:x").startswith("leaves this machine")
    assert "no activation memory" in model_notice(Settings(), "openai:x")
    off = Settings(openai=OpenAISettings(base_url="http://192.168.1.20:8080"))
    assert model_notice(off, "openai:x").startswith("refused: off this machine")
    assert model_notice(Settings(), "gemma3-270m") == ""


def test_the_key_comes_from_the_named_variable_only(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="name an environment variable"):
        OpenAIClient(server.base_url, api_key_env="sk-secret-key-1234")
    monkeypatch.setenv("MY_SERVER_KEY", "k-123")
    c = OpenAIClient(server.base_url, api_key_env="MY_SERVER_KEY")
    try:
        assert c._http.headers["Authorization"] == "Bearer k-123"
        assert c.models()  # the server takes it (it checks no key)
    finally:
        c.close()


def test_sampling_options_are_checked() -> None:
    assert parse_options(["max_tokens=7", "temperature=0.2"]) == {
        "max_tokens": 7,
        "temperature": 0.2,
    }
    for bad, says in [
        (["colour=blue"], "unknown option 'colour'"),
        (["max_tokens=many"], "must be a whole number"),
        (["max_tokens=0"], "between 1 and 32768"),
        (["temperature=9"], "between 0 and 2"),
        (["temperature=nan"], "between 0 and 2"),
        (["max_tokens"], "not NAME=VALUE"),
    ]:
        with pytest.raises(InvalidInputError, match=says):
            parse_options(bad)
    warmed = with_options(SamplingParams.greedy(), {"temperature": 0.8})
    assert warmed.temperature == 0.8 and warmed.top_k > 1  # greedy no longer


def test_a_memory_chat_through_the_api_uses_the_server_and_saves_no_kv_state(
    server: Server, embedder: Embedder
) -> None:
    from memos_desktop.api import MemosAPI
    from tests.conftest import new_profile

    store = new_profile(embedder)
    api = MemosAPI(
        store,
        embedder,
        engine_factory=lambda: OpenAICompatEngine("openai:tiny", settings_for(server)),
    )
    try:
        api.add("My sister Lena lives in Lisbon")
        turn = api.chat("Where does Lena live?", options={"max_tokens": 6})
        answer = "".join(turn)
        assert turn.stats is not None and turn.stats.completion_tokens <= 6
        assert turn.kv_restored is False
        assert [u.text for u in turn.used][:1] == ["My sister Lena lives in Lisbon"]
        assert turn.conversation_id is not None
        stored = [m.content for m in api.messages(turn.conversation_id)]
        assert stored == ["Where does Lena live?", answer]
        assert store.activations.count() == 0  # activation memory does not apply to it
        # Cancelled through the API: the turn ends "cancelled" and is recorded as such.
        cancel = CancelToken()
        turn = api.chat(
            "Tell me a long story", sampling=SamplingParams(max_tokens=900), cancel=cancel
        )
        for n, _ in enumerate(turn, 1):
            if n == 2:
                cancel.cancel()
        assert turn.stats is not None and turn.stats.finish_reason == "cancelled"
        assert turn.conversation_id is not None
        assert api.messages(turn.conversation_id)[-1].meta.get("cancelled") is True
    finally:
        api.close()


def test_embeddings_from_the_server(server: Server) -> None:
    from memos_desktop.engines.openai_compat import OpenAIEmbedder

    e = OpenAIEmbedder("openai:tiny", settings_for(server))
    try:
        assert e.model_id == "openai:tiny" and e.dim == 64  # the tiny model's width
        v = e.embed(
            ["my sister lives in Lisbon", "the quarterly report", "my sister lives in Lisbon"]
        )
        assert v.shape == (3, 64) and v.dtype == np.float32
        assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
        assert np.allclose(v[0], v[2]) and not np.allclose(v[0], v[1])
        assert e.embed([]).shape == (0, 64)
    finally:
        e.client.close()


def test_embeddings_are_refused_from_a_server_off_this_machine() -> None:
    from memos_desktop.engines.openai_compat import OpenAIEmbedder

    remote = OpenAISettings(base_url="http://192.0.2.1:8080", allow_remote=True)
    with pytest.raises(EngineError, match="send it every memory"):
        OpenAIEmbedder("openai:x", remote)  # refused before any connection is tried

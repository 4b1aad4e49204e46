"""The API owns its thread safety: one re-entrant lock that every call takes, and a streaming
answer that takes it per piece (so a search interleaves with generation). Real encrypted
profile, real MiniLM embedder, real tiny GGUF model."""

from __future__ import annotations

import threading

from memos_desktop.api import MemosAPI, SamplingParams

LONG = SamplingParams.greedy(max_tokens=24)


def run_in_thread(fn):  # type: ignore[no-untyped-def]
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    t.start()
    return t, out


def test_a_call_waits_while_another_thread_holds_the_lock(api: MemosAPI) -> None:
    api.add("My sister Lena lives in Lisbon")
    with api.lock:
        t, out = run_in_thread(lambda: api.search("Lena").hits)
        t.join(0.5)
        assert t.is_alive() and out == []  # blocked on the lock
        assert api.count() == 1  # re-entrant: the holder itself goes on
    t.join(30)
    assert not t.is_alive()
    assert [h.item.text for h in out[0]] == ["My sister Lena lives in Lisbon"]  # type: ignore[attr-defined]


def test_a_streaming_answer_takes_the_lock_per_piece(api: MemosAPI) -> None:
    api.add("My cat is called Miso")
    turn = api.chat("tell me about my cat", sampling=LONG)
    pieces = iter(turn)
    first = next(pieces)
    assert first and not turn.done
    # Between two pieces the lock is free: another thread's search does not wait for the end.
    t, out = run_in_thread(lambda: api.search("cat").hits)
    t.join(30)
    assert not t.is_alive() and out[0]
    assert not turn.done
    # The next piece is produced holding the lock: it waits while another thread holds it.
    with api.lock:
        t, got = run_in_thread(lambda: next(pieces, None))
        t.join(0.5)
        assert t.is_alive() and got == []
    t.join(30)
    assert not t.is_alive() and len(got) == 1
    rest = "".join(pieces)
    assert turn.done
    assert turn.answer == first + (got[0] or "") + rest  # type: ignore[operator]
    assert [m.role for m in api.messages(turn.conversation_id or "")] == ["user", "assistant"]

"""Memory-augmented chat: retrieve, assemble, restore the prefix's KV state, stream, record.

Design rules:
- The turn is recorded only after the answer is complete (or cancelled: then the question is
  kept and the partial answer is marked as such), and then the exchange is stored at once as a
  raw episodic memory (MemReader fast mode) and a fine-extraction job is queued for the daemon,
  all in one unit of work (a crash leaves all of these records or none).
- A stopped answer's question goes back in the prompt box. Sent again (the same words, or an
  edit of them) as the next message of that conversation, it replaces the stopped exchange's
  memories (forgotten, with the reason) and its extraction job if no worker has it yet, so the
  message leaves one memory, not two. A stopped message never sent again keeps its memory.
- What is shown is what is stored: the stream is the engine's (which holds back a tail that
  could grow into a stop string), minus a held-back tail left at the budget's end; a base
  model's answer starts at its first word, ends when it loops, and is said in the assistant's
  voice ("Your husband is Rui", not "My husband is Rui"). The engine's stops always include
  the turn markers.
- Temporary chats write nothing: no conversation, no message, no memory, no job, no KV state.
- The stable prefix's KV state is looked up under (model sha256, adapter, prefix sha256,
  settings); on a miss it is computed and saved (encrypted, in the profile DB) for next time.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from memos_desktop.engines.base import (
    CancelToken,
    ChatEngine,
    ChatMessage,
    Embedder,
    GenerationStats,
    KVState,
    SamplingParams,
    has_activation_memory,
    holdback,
    with_options,
)
from memos_desktop.engines.chat_format import TURN_MARKERS
from memos_desktop.memory import asked_kind, completion, later, note_answers, slot_answers
from memos_desktop.memory.consolidate import EXTRACT
from memos_desktop.memory.ingest import store_read
from memos_desktop.memory.reader import READ_KEY, stem
from memos_desktop.memory.repeat_guard import RepeatGuard
from memos_desktop.memory.scheduler import Assembled, Budget, Scheduler, UsedMemory, used_memory
from memos_desktop.store.profile import Store
from memos_desktop.store.records import Cube, MemoryItem, Message, SearchHit

log = logging.getLogger(__name__)

Retriever = Callable[[str, int], Sequence[SearchHit]]

_WORDS = re.compile(r"\w+")


ONE_NOTE_TRIES = 2


def _used_alone(item: MemoryItem, hits: Sequence[SearchHit]) -> tuple[UsedMemory, ...]:
    """The used memories of an answer said from ``item`` alone, with its search score."""
    score = next((h.score for h in hits if h.item.id == item.id), 0.0)
    return (used_memory(item, score, "retrieved"),)


class _Cancel(CancelToken):
    """Set by the caller's token or by this one's own ``cancel()``."""

    def __init__(self, outer: CancelToken | None) -> None:
        super().__init__()
        self.outer = outer

    @property
    def outer_cancelled(self) -> bool:
        return self.outer is not None and self.outer.cancelled

    @property
    def cancelled(self) -> bool:
        return self._event.is_set() or self.outer_cancelled


def _per_item(
    note_for: Callable[[MemoryItem], str | None],
) -> Callable[[MemoryItem], str | None]:
    """``note_for`` asked once per memory (by id), for the answer being assembled."""
    seen: dict[str, str | None] = {}

    def note_of(item: MemoryItem) -> str | None:
        if item.id not in seen:
            seen[item.id] = note_for(item)
        return seen[item.id]

    return note_of


def asked_before(item: MemoryItem) -> bool:
    """A raw episode of an exchange in which the person only asked (no fact in it)."""
    if item.type != "episode" or item.key == READ_KEY:
        return False
    return completion.note_text(item.text) is None


def sent_again(old: str, new: str) -> bool:
    """Whether ``new`` is ``old`` sent again: the same words, or an edit that keeps at least
    half of them (word Jaccard >= 0.5)."""
    a, b = set(_WORDS.findall(old.casefold())), set(_WORDS.findall(new.casefold()))
    return bool(a and b) and len(a & b) / len(a | b) >= 0.5


@dataclass
class ChatTurn:
    """One answer in progress. Iterate it for text; afterwards read the fields."""

    conversation_id: str | None
    used: tuple[UsedMemory, ...]
    kv_restored: bool
    prefix_tokens: int
    _stream: Iterator[str] = field(repr=False, default_factory=lambda: iter(()))
    answer: str = ""
    stats: GenerationStats | None = None
    done: bool = False
    # A base model's answer the notes did not support, replaced by "I don't know."
    unsupported: bool = False
    # The answer is a note as the person told it, the model's own answer left out
    quoted: bool = False
    # The answer is the model's, asked again with one note alone (its first was unsupported)
    asked_again: bool = False
    # A later note that changed what the answer says is said after it (``later``)
    changed: bool = False

    def __iter__(self) -> Iterator[str]:
        yield from self._stream


@dataclass(frozen=True)
class _Slot:
    ask: slot_answers.Asked
    memories: slot_answers.Memories

    def fits(self, text: str, item_id: str = "") -> bool:
        return self.memories.fits(self.ask, text, item_id)


class ChatService:
    def __init__(
        self,
        store: Store,
        engine: ChatEngine,
        embedder: Embedder | None,
        cube: Cube,
        user_id: str,
        retrieve: Retriever,
        budget: Budget | None = None,
    ) -> None:
        """``retrieve(query, top_k)`` is the API's hybrid search over this cube."""
        self.retrieve = retrieve
        self.store = store
        self.engine = engine
        self.embedder = embedder
        self.cube = cube
        self.user_id = user_id
        self.conversations = store.conversations
        self.jobs = store.jobs
        self.activation = store.activations
        self.style = engine.prompt_style
        self.scheduler = Scheduler(store, engine.count_tokens, budget or Budget(), style=self.style)

    def sampling(
        self, given: SamplingParams | None, options: Mapping[str, int | float] | None = None
    ) -> SamplingParams:
        """A base model: greedy, a one-line budget, the completion stops. A chat model: the
        given settings (or the defaults), plus the turn markers as stops. ``options`` (the
        caller's ``max_tokens``, ``temperature``...) change either."""
        if self.style == "completion":
            return with_options(completion.sampling(given), options or {})
        return completion.with_stops(
            with_options(given or SamplingParams(), options or {}), TURN_MARKERS
        )

    def prepare_prefix(self, assembled: Assembled, *, save: bool) -> tuple[bool, int]:
        """Restore the prefix's KV state from activation memory, or compute (and save) it.
        An engine without activation memory (a server model) skips this: nothing is saved."""
        e = self.engine
        if not has_activation_memory(e):
            return False, e.count_message_tokens(assembled.prefix) if assembled.prefix else 0
        key = (e.model_sha256, e.adapter_id, e.prefix_sha256(assembled.prefix), e.settings_key)
        rec = self.activation.get(*key)
        if rec is not None and e.restore_prefix_state(KVState.from_record(rec), assembled.prefix):
            return True, rec.n_tokens
        state = e.save_prefix_state(assembled.prefix)
        if save:
            self.activation.put(state, user_id=self.user_id, cube_id=self.cube.id)
            self.activation.evict_to(self.store.settings.engine.activation_cache_mib * 2**20)
        return False, state.n_tokens

    def turn(
        self,
        query: str,
        conversation_id: str | None = None,
        *,
        temporary: bool = False,
        sampling: SamplingParams | None = None,
        cancel: CancelToken | None = None,
        system: str = "",
        context: str = "",
        options: Mapping[str, int | float] | None = None,
    ) -> ChatTurn:
        """One answer. ``system`` is the caller's own instruction, added to the system
        prefix; ``context`` is text given with the question (piped into ``ask``): it is part
        of the message (sent and recorded) but memories are searched with ``query`` alone."""
        now = time.time()
        # A base model and the rules that read questions get the question asked plainly
        # ("Remind me what my dad does" -> "What does my dad do?").
        title = query[:60]
        asked = completion.plain_question(query) if self.style == "completion" else query
        if context.strip():
            query = f"{context.rstrip()}\n\n{query}"
        conv_id = conversation_id
        history: list[Message] = []
        if not temporary:
            if conv_id is None:
                conv_id = self.conversations.create(self.user_id, self.cube.id, title=title).id
            else:
                history = self.conversations.messages(conv_id, last=20)
        top_k = self.scheduler.budget.top_k
        # A base model's prompt leaves out memories with no fact in them (questions): ask for
        # more, the scheduler keeps the best few facts.
        want = top_k * 2 if self.style == "completion" else top_k
        hits = self._found(asked, want * 2)[:want]  # fetched beyond what is wanted
        direct, slot = None, None
        # A memory's note (a store read and the reader's patterns) is asked for by the direct
        # answers and the prompt both: once per turn.
        note_of = _per_item(self.scheduler.note_for)
        if self.style == "completion" and not context and completion.is_question(asked):
            direct, slot = self._direct(asked, hits, note_of)
            if system.strip():
                direct = None  # the caller's own instruction shapes the answer: the model's
            if direct is not None and asked_kind.missing(asked, direct.text):
                direct = None  # "Your car is a Toyota." does not say what colour it is
        if slot is not None:
            hits = [h for h in hits if slot.fits(h.item.text, h.item.id)]
        prompt_query = query if context.strip() else asked
        assembled = self.scheduler.assemble(
            self.cube, prompt_query, hits, history, now=now, note_of=note_of
        )
        if system.strip():
            extra = ChatMessage("system", system.strip())
            rest = assembled.messages[len(assembled.prefix) :]
            prefix = (*assembled.prefix, extra)
            assembled = replace(assembled, prefix=prefix, messages=(*prefix, *rest))
        restored, n_prefix = self.prepare_prefix(assembled, save=not temporary)
        turn = ChatTurn(
            conversation_id=conv_id,
            used=assembled.used,
            kv_restored=restored,
            prefix_tokens=n_prefix,
        )

        if direct is not None:
            # One memory says what is asked (one slot's value, the instruction asked about,
            # the yes or no): it is said from that memory, not left to a small model that
            # may take another subject's note.
            item = direct.item
            turn.used = _used_alone(item, hits)
            turn._stream = self._known_answer(
                turn, direct.text, assembled, temporary, conv_id, query, now, history
            )
            return turn
        params = self.sampling(sampling, options)
        plain = self.style == "completion"
        if plain and not assembled.used and completion.personal_question(asked):
            # A base model asked about the person with no memory to go on would make it up.
            turn._stream = self._known_answer(
                turn, completion.DONT_KNOW, assembled, temporary, conv_id, query, now, history
            )
            return turn
        own = _Cancel(cancel)  # the repetition guard stops the engine through it too
        guard = RepeatGuard() if plain else None
        voice = completion.Voice() if plain else None

        # A base model's answer to a question is held until its line is complete (a fraction
        # of a second) and shown only if the notes support it; one they do not support was
        # made up, and "I don't know" is said instead.
        check = plain and completion.is_question(asked)
        given = completion.given_text(assembled.messages) if check else ""
        names: set[str] = set()
        if check and slot is not None:
            # Only the notes that may hold the asked slot support an answer to it ("Your
            # middle name is Marta." is not supported by "Your name is Marta.").
            core = [u.text for u in assembled.used if u.origin == "core"]
            kept = [n for t in core if slot.fits(t) and (n := completion.note_text(t))]
            given = "\n".join(kept) + "\n" + assembled.messages[-1].content
            # Of someone else ("How old is my cat?"), only the notes that name them
            # ("You have a beagle called Fasola, she's 6." does not say the cat's age).
            names = slot.memories.names_of(slot.ask)
        elif check:
            # The same for anyone the question names ("Where did Dominika study?" is not
            # answered by "You studied computer science at AGH.").
            names = {stem(n) for n in asked_kind.names(asked)}

        def named(note: str) -> bool:
            return not names or bool(names & slot_answers.name_words(note))

        def keep(note: str) -> bool:  # a note the model may be asked again with, alone
            return (slot is None or slot.fits(note)) and named(note)

        if names:
            given = "\n".join(
                line for line in given.splitlines() if not line.startswith("- ") or named(line)
            )

        def stream() -> Iterator[str]:
            started = not plain
            parts: list[str] = []
            held: list[str] = []
            for chunk in self.engine.chat_stream(assembled.messages, params, own):
                text = chunk.text
                if chunk.stats is not None:
                    turn.stats = chunk.stats
                    if chunk.stats.finish_reason != "stop":  # cut by the budget or cancelled:
                        text = text[: len(text) - holdback(text, params.stop)]  # no half stop
                if not started:
                    text = text.lstrip()
                    started = bool(text)
                if guard is not None:
                    text = guard.feed(text) + (guard.finish() if chunk.stats is not None else "")
                    if guard.done:
                        own.cancel()
                if voice is not None:
                    text = voice.feed(text, final=chunk.stats is not None)
                if text and check:
                    held.append(text)
                elif text:
                    parts.append(text)
                    yield text
            if held:
                answer = "".join(held)
                unknown = answer.strip() == completion.DONT_KNOW
                if (
                    not own.outer_cancelled
                    and not unknown
                    and not completion.supported(answer, given, asked)
                ):
                    turn.unsupported = True
                    answer, unknown = completion.DONT_KNOW, True
                bare = not unknown and completion.says_too_little(answer, asked)
                # which names are which relatives, as the hits tell ("the dog" is Fasola): for
                # the quote and the retry below, so only when the answer is not given as it is
                links = (
                    slot_answers.Memories([h.item for h in hits]).links
                    if unknown or bare
                    else set()
                )
                if (unknown or bare) and not own.outer_cancelled:
                    # A note among the first hits may say what was asked in so many words
                    # (the model took another one's, or none, or said only "Yes." to "Am I
                    # allergic to anything?"): it is told as the person said it.
                    quoted = note_answers.quoted_answer(
                        asked, [h.item for h in hits], note_of, links=links
                    )
                    if quoted is not None:
                        answer, turn.quoted = quoted.text, True
                        turn.used = _used_alone(quoted.item, hits)
                if (unknown or bare) and not turn.quoted and not own.outer_cancelled:
                    again = self._one_note(
                        asked, hits, note_of, assembled, params, _Cancel(cancel), keep, links
                    )
                    if again is not None:
                        answer, item = again
                        unknown = bare = False
                        turn.unsupported, turn.asked_again = False, True
                        turn.used = _used_alone(item, hits)
                if not unknown and not own.outer_cancelled:
                    # a later note may have changed it ("switched bouldering to Tuesdays")
                    now_said = later.changed_answer(
                        asked,
                        answer,
                        [h.item for h in hits],
                        note_of,
                        named,
                        lambda t: [h.item for h in self._found(t, later.SEARCHED)],
                    )
                    if now_said is not None:  # both notes are shown as used
                        answer, turn.changed = now_said[0], True
                        turn.used = (
                            *_used_alone(now_said[1], hits),
                            *_used_alone(now_said[2], hits),
                        )
                if turn.unsupported and not turn.quoted:
                    log.info(
                        "an answer the notes do not support was replaced by %r",
                        completion.DONT_KNOW,
                    )
                parts.append(answer)
                yield answer
            if (
                guard is not None
                and guard.done
                and turn.stats is not None
                and not own.outer_cancelled
            ):
                turn.stats = replace(turn.stats, finish_reason="stop")  # ended by the guard
            turn.answer = "".join(parts)
            turn.done = True
            if not temporary and conv_id is not None:
                self._record(conv_id, query, turn, now, history)

        turn._stream = stream()
        return turn

    def _found(self, query: str, k: int) -> list[SearchHit]:
        """The memories found for ``query``, less the raw episodes of what the person asked
        before ("User: What's my name?"): they hold no fact and are nearest to a question like
        theirs, so they would crowd out the memories that answer."""
        return [h for h in self.retrieve(query, k) if not asked_before(h.item)]

    def _one_note(
        self,
        asked: str,
        hits: Sequence[SearchHit],
        note_of: Callable[[MemoryItem], str | None],
        assembled: Assembled,
        params: SamplingParams,
        cancel: CancelToken,
        keep: Callable[[str], bool],
        links: set[tuple[str, str]],
    ) -> tuple[str, MemoryItem] | None:
        """A small model given several notes may take the wrong one, or none: asked again with
        each of the best notes alone, the first answer that note supports."""
        in_prompt = {u.id for u in assembled.used if u.origin != "core"}
        tried: set[str] = set()
        for h in hits:
            if len(tried) >= ONE_NOTE_TRIES:
                break
            if h.item.id not in in_prompt:
                continue
            note = note_of(h.item)
            if not note or note in tried or not keep(note):
                continue
            if not note_answers.on_topic(asked, h.item, note, links=links):
                continue
            tried.add(note)
            out = completion.ask_alone(self.engine, assembled.messages, note, asked, params, cancel)
            if cancel.cancelled:
                return None
            if out is not None:
                return out, h.item
        return None

    def _direct(
        self,
        question: str,
        hits: Sequence[SearchHit],
        note_of: Callable[[MemoryItem], str | None],
    ) -> tuple[slot_answers.MemoryAnswer | None, _Slot | None]:
        """For a base model: the answer one memory gives (see ``slot_answers``), and, for a
        question about one slot, which notes may hold it."""
        items = [h.item for h in hits]
        said = note_answers.instruction_answer(question, items)
        if said is not None:
            return said, None
        ask = slot_answers.asked(question)
        slot = None
        if ask is not None:
            keyed = self.store.memories.by_keys(self.cube.id, ask.memory_keys())
            mem = slot_answers.Memories([*items, *keyed])
            said = slot_answers.answer(
                ask, mem, items[: self.scheduler.budget.completion_notes], note_of
            )
            slot = _Slot(ask, mem)
        if said is None:
            said = note_answers.yes_no_answer(question, items)
        if said is None:
            said = note_answers.named_yes_no_answer(question, items, note_of)
        if said is None:
            said = note_answers.count_answer(question, items)
        if said is None:
            said = note_answers.choice_answer(question, items)
        if said is None:
            said = note_answers.who_answer(question, items, note_of)
        if said is None:
            said = note_answers.covering_answer(question, items, note_of)
        return said, slot

    def _known_answer(
        self,
        turn: ChatTurn,
        text: str,
        assembled: Assembled,
        temporary: bool,
        conv_id: str | None,
        query: str,
        now: float,
        history: Sequence[Message],
    ) -> Iterator[str]:
        """An answer given without generating (recorded like any other)."""
        turn.stats = GenerationStats(
            prompt_tokens=self.engine.count_message_tokens(assembled.messages),
            completion_tokens=0,
            ttft_s=time.time() - now,
            tokens_per_s=0.0,
            prefix_tokens_reused=0,
            finish_reason="stop",
        )
        turn.answer = text
        yield text
        turn.done = True
        if not temporary and conv_id is not None:
            self._record(conv_id, query, turn, now, history)

    def _record(
        self,
        conv_id: str,
        query: str,
        turn: ChatTurn,
        asked_at: float,
        history: Sequence[Message] = (),
    ) -> None:
        """Both messages, the used-memory marks, the raw episode and its extraction job (and
        the retraction of a stopped exchange this one sends again): one unit of work, so a
        crash leaves all of them or none."""
        with self.store.unit_of_work():
            self._replace_stopped(query, history)
            self._record_writes(conv_id, query, turn, asked_at)

    def _replace_stopped(self, query: str, history: Sequence[Message]) -> None:
        """If the conversation's last exchange was stopped and ``query`` sends its question
        again, forget what that exchange stored and drop its extraction job if still queued."""
        if len(history) < 2:
            return
        user, bot = history[-2], history[-1]
        if user.role != "user" or bot.role != "assistant" or not bot.meta.get("cancelled"):
            return
        if not sent_again(user.content, query):
            return
        ids = {user.id, bot.id}
        for item in self.store.memories.citing(self.cube.id, user.id):
            cited = [s.message_id for s in item.sources if s.kind == "conversation"]
            if cited and all(m in ids for m in cited):  # only from the stopped exchange
                self.store.memories.forget(item.id, reason="the stopped message was sent again")
        self.jobs.drop_queued(f"extract:{user.id}")

    def _record_writes(self, conv_id: str, query: str, turn: ChatTurn, asked_at: float) -> None:
        cancelled = turn.stats is not None and turn.stats.finish_reason == "cancelled"
        user_msg = self.conversations.add_message(conv_id, "user", query, at=asked_at)
        meta: dict[str, Any] = {
            "used": [u.to_json() for u in turn.used],
            "kv_restored": turn.kv_restored,
        }
        if turn.stats is not None:
            meta["stats"] = {
                "ttft_s": turn.stats.ttft_s,
                "tokens_per_s": turn.stats.tokens_per_s,
                "prompt_tokens": turn.stats.prompt_tokens,
                "completion_tokens": turn.stats.completion_tokens,
                "finish_reason": turn.stats.finish_reason,
            }
        if cancelled:
            meta["cancelled"] = True
        bot_msg = self.conversations.add_message(conv_id, "assistant", turn.answer, meta=meta)
        self.store.memories.mark_used([u.id for u in turn.used if u.origin != "core"])
        emb = self.embedder
        if emb is None or emb.model_id != self.cube.embed_model:
            emb = None
        # A stopped message sent again reads the same memories: the reconciler keeps one.
        store_read(self.store, self.cube, [(user_msg, bot_msg)], emb)
        self.jobs.enqueue(
            EXTRACT.name,
            {
                "conversation_id": conv_id,
                "cube_id": self.cube.id,
                "message_ids": [user_msg.id, bot_msg.id],
            },
            dedupe_key=f"extract:{user_msg.id}",
        )

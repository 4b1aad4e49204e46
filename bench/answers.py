"""Answers from memory, end to end: do they stop, stay clean, hold the right fact, and how fast.

Usage: .venv/bin/python bench/answers.py [--models gemma,tiny] [--sets answers,answers_tune]
       [--show dev] [--no-write]

For each model, on a fresh encrypted profile: the statements of bench/data/answers.json are
told through ``MemosAPI.chat`` (one conversation per list, corrections last), the profile is
closed and opened again (a restart), then every question is asked in a new conversation. The
app's own path is used: the chat model comes from the settings through the catalog and the
loader (``gemma``: the packaged Gemma 3 270M, a base model, so the completion prompt; ``tiny``:
a random-weight model with a ChatML template, to show the scoring is not fooled by noise),
default sampling, default threads.

Scored per answer: *stopped* (finish_reason "stop", not the token budget), *unclean* (it echoes
the prompt: a prompt label such as "Question:", a 5-word run of the fixed prompt text, a list
of notes; or it leaks special-token text such as "<start_of_turn>"), *right* (answerable
questions: it contains an accepted answer and does not say it does not know; questions with
no answer in memory: it says it does not know), *stale* (corrections: the old value only).
Sets (bench/data, see its README): ``answers.json`` (split dev / test), ``answers_tune.json``
(split tune: a second person, written later by someone who had not seen the app's rules) and
``answers_holdout.json`` (split holdout: a third, written the same way). dev and tune were used
to tune the completion prompt and the question patterns of the answers said from memory; test
and holdout were not looked at while tuning. Each set is told to its own fresh profile.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import git_rev, machine, write_section
from memos_desktop.api import MemosAPI, open_api
from memos_desktop.config import EngineSettings, ModelSettings, Settings, resolve_paths
from memos_desktop.memory import completion
from memos_desktop.memory.scheduler import PERSONA
from memos_desktop.store.profile import create_profile

DATA = Path(__file__).resolve().parent / "data"
SETS = ("answers", "answers_tune", "answers_holdout")
PASSPHRASE = "bench answers"

LEAK = re.compile(
    r"<\|?/?[a-z_]+\|?>|<unused\d+>|start_of_turn|end_of_turn|im_start|im_end|\[/?INST\]|"
    r"<bos>|<eos>|<pad>",
    re.I,
)
LABELS = re.compile(
    r"\b(?:Notes|Question|Answer|User|Assistant|Memories that may be relevant|"
    r"What you know about the user)\s*:",
    re.I,
)
DONT_KNOW = re.compile(
    r"\b(?:do not|don't|dont|did not|didn't) (?:know|remember)\b|\bnot sure\b|"
    r"\bno (?:information|record|idea|notes?)\b|\bhaven't (?:told|said|mentioned)\b|"
    r"\b(?:didn't|did not|never) (?:tell|say|mention)\b|\bnot in (?:my|the) notes\b|"
    r"\bi (?:don't|do not) have\b|\bcan(?:no|')t tell\b|\bunknown\b",
    re.I,
)


def fold(text: str) -> str:
    t = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in t if not unicodedata.combining(c))


def mentions(answer: str, values: list[str]) -> bool:
    a = fold(answer)
    return any(re.search(rf"(?<!\w){re.escape(fold(v))}(?!\w)", a) for v in values)


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    w = re.findall(r"\w+", fold(text))
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


# The fixed text of both prompt styles: an answer sharing a 5-word run with it echoes the prompt.
TEMPLATE = shingles(PERSONA) | shingles(completion.prefix_text([]))


def unclean(answer: str) -> str:
    if LEAK.search(answer):
        return "leak"
    if LABELS.search(answer) or shingles(answer) & TEMPLATE:
        return "echo"
    if len(re.findall(r"(?m)^\s*- ", answer)) >= 2:
        return "echo"
    return ""


@dataclass
class Answer:
    q: dict[str, Any]
    text: str
    finish: str
    seconds: float
    tokens: int
    unsupported: bool = False  # a made-up answer replaced by "I don't know."
    quoted: bool = False  # the answer is a note as the person told it (not the model's)
    asked_again: bool = False  # the model's answer asked again with one note alone
    changed: bool = False  # a later note that changed it is told after the answer

    @property
    def stopped(self) -> bool:
        return self.finish == "stop"

    @property
    def dont_know(self) -> bool:
        return bool(DONT_KNOW.search(self.text))

    @property
    def right(self) -> bool:
        if self.q["kind"] == "unknown":
            return self.dont_know
        return mentions(self.text, self.q["accept"]) and not self.dont_know

    @property
    def stale(self) -> bool:
        return bool(self.q.get("stale")) and not self.right and mentions(self.text, self.q["stale"])


def ask(api: MemosAPI, text: str, conv: str | None = None) -> tuple[Any, str, float]:
    t0 = time.perf_counter()
    turn = api.chat(text, conv)
    out = "".join(turn)
    return turn, out, time.perf_counter() - t0


def run(
    model: str, name: str, data: dict[str, Any], show: str
) -> tuple[list[Answer], list[Answer]]:
    home = tempfile.mkdtemp(prefix=f"memos-answers-{model}-{name}-")
    os.environ["MEMOS_DESKTOP_HOME"] = home
    os.environ["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"
    paths = resolve_paths()
    chat_model = "gemma3-270m"
    if model.startswith("tiny"):
        from tests.fixtures.tiny_model import write_tiny_model

        chat_model = str(write_tiny_model(Path(home) / "tiny-random.gguf", seed=0))
    # "tiny-completion": the random model given the completion prompt (as a base model would).
    style = "completion" if model.endswith("-completion") else "auto"
    settings = Settings(
        profile="bench",
        models=ModelSettings(chat=chat_model),
        engine=EngineSettings(prompt_style=style),
    )
    from memos_desktop.engines.loader import load_embedder

    emb = load_embedder(paths, settings.models.embedding)
    create_profile(
        paths,
        "bench",
        settings,
        method="passphrase",
        passphrase=PASSPHRASE,
        embed_model=emb.model_id,
        embed_dim=emb.dim,
    ).close()

    def open_() -> MemosAPI:
        return open_api(paths, settings, passphrase_provider=lambda _p: PASSPHRASE)

    told: list[Answer] = []
    api = open_()
    for conv in data["conversations"]:
        conv_id = None
        for sid in conv:
            st = data["statements"][sid]
            turn, out, secs = ask(api, st["text"], conv_id)
            conv_id = turn.conversation_id
            s = turn.stats
            told.append(
                Answer(
                    {"q": st["text"], "kind": "statement", "split": "-", "accept": []},
                    out,
                    s.finish_reason if s else "?",
                    secs,
                    s.completion_tokens if s else 0,
                )
            )
    api.close()  # a restart: the questions come from a freshly opened profile
    api = open_()
    print(f"{model}: prompt style {api.engine.prompt_style}", file=sys.stderr)
    answers: list[Answer] = []
    for q in data["questions"]:
        turn, out, secs = ask(api, q["q"])
        s = turn.stats
        a = Answer(
            q,
            out,
            s.finish_reason if s else "?",
            secs,
            s.completion_tokens if s else 0,
            bool(getattr(turn, "unsupported", False)),
            bool(getattr(turn, "quoted", False)),
            bool(getattr(turn, "asked_again", False)),
            bool(getattr(turn, "changed", False)),
        )
        answers.append(a)
        if q["split"] in show.split(","):
            mark = "ok " if a.right else ("STALE" if a.stale else "BAD")
            print(
                f"{mark} [{q['kind']}] {q['q']!r} -> {out!r} ({a.finish}, {secs:.2f}s)",
                file=sys.stderr,
            )
    api.close()
    return told, answers


def pct(n: int, d: int) -> str:
    return f"{100 * n / d:.0f}% ({n}/{d})" if d else "-"


def row(model: str, split: str, ans: list[Answer]) -> str:
    """A table row; ``split`` is "set | split" (two columns)."""
    known = [a for a in ans if a.q["kind"] not in ("unknown", "statement")]
    unknown = [a for a in ans if a.q["kind"] == "unknown"]
    secs = sorted(a.seconds for a in ans)
    p95 = secs[min(len(secs) - 1, round(0.95 * (len(secs) - 1)))] if secs else 0.0
    return (
        f"| {model} | {split} | {len(ans)} | {pct(sum(a.stopped for a in ans), len(ans))} | "
        f"{sum(bool(unclean(a.text)) for a in ans)} | "
        f"{pct(sum(a.right for a in known), len(known))} | "
        f"{pct(sum(a.dont_know for a in unknown), len(unknown))} | "
        f"{statistics.median(secs) if secs else 0:.2f} | {p95:.2f} |"
    )


def by_kind(ans: list[Answer]) -> str:
    kinds: dict[str, list[Answer]] = defaultdict(list)
    for a in ans:
        kinds[a.q["kind"]].append(a)
    parts = []
    for k in ("fact", "preference", "event", "instruction", "correction", "unknown"):
        if kinds.get(k):
            extra = ""
            if k == "correction":
                extra = f", stale {sum(a.stale for a in kinds[k])}"
            parts.append(f"{k} {pct(sum(a.right for a in kinds[k]), len(kinds[k]))}{extra}")
    return "; ".join(parts)


def _spread(part: list[Answer]) -> str:
    """How many of ``part`` went to answerable questions (and were right), how many not."""
    known = [a for a in part if a.q["kind"] != "unknown"]
    return (
        f"{len(known)} to answerable questions ({sum(a.right for a in known)} right), "
        f"{len(part) - len(known)} to questions with no answer in memory"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--models",
        default="gemma,tiny,tiny-completion",
        help="comma-separated: gemma, tiny, tiny-completion",
    )
    ap.add_argument("--sets", default=",".join(SETS), help="comma-separated, from bench/data")
    ap.add_argument("--dump", default="", help="write every answer to this JSON file")
    ap.add_argument("--show", default="", help="print each answer of these splits (dev,tune)")
    ap.add_argument(
        "--only",
        default="",
        help="ask only the questions of these splits (dev,tune: tuning never sees the others)",
    )
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if args.only and not args.no_write:
        ap.error("--only leaves splits out of the table: use it with --no-write")
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    sets = {
        name: json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))
        for name in (n.strip() for n in args.sets.split(",") if n.strip())
    }
    if only:
        for d in sets.values():
            d["questions"] = [q for q in d["questions"] if q["split"] in only]
    head = (
        "| model | set | split | answers | stopped by themselves | echo / special-token leak | "
        "right fact (answerable) | says it does not know (nothing in memory) | median s | "
        "p95 s |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    rows: list[str] = []
    kinds: list[str] = []
    told_rows: list[str] = []
    unclean_examples: list[str] = []
    long_examples: list[str] = []
    dump: list[dict[str, Any]] = []
    for model in [m.strip() for m in args.models.split(",") if m.strip()]:
        for name, data in sets.items():
            told, answers = run(model, name, data, args.show)
            splits = list(dict.fromkeys(q["split"] for q in data["questions"]))
            for split in splits:
                part = [a for a in answers if a.q["split"] == split]
                rows.append(row(model, f"{name} | {split}", part))
                kinds.append(f"- {model}, {name} {split}: {by_kind(part)}")
            told_rows.append(row(model, f"{name} | statements told", told))
            for split in splits:
                # Said without the model: from the one memory that answers (a slot's value,
                # the instruction asked about, a yes/no or choice a note settles).
                part = [a for a in answers if a.q["split"] == split and a.tokens == 0 and a.stopped]
                if part:
                    known = [a for a in part if a.q["kind"] != "unknown"]
                    kinds.append(
                        f"- {model}, {name} {split}: {len(part)} answers said without "
                        f"generating, {len(known)} of them to answerable questions "
                        f"({sum(a.right for a in known)} right), {len(part) - len(known)} to "
                        "questions with no answer in memory "
                        f"({sum(a.right for a in part if a.q['kind'] == 'unknown')} right)"
                    )
            if model == "gemma":
                for split in splits:
                    part = [
                        a
                        for a in answers
                        if a.q["split"] == split and a.unsupported and not a.quoted
                    ]
                    unknown = sum(a.q["kind"] == "unknown" for a in part)
                    kinds.append(
                        f"- gemma, {name} {split}: {len(part)} answers the notes did not support "
                        f'were replaced by "I don\'t know." ({unknown} to questions with no '
                        f"answer in memory, {len(part) - unknown} to answerable ones)"
                    )
                    part = [a for a in answers if a.q["split"] == split and a.quoted]
                    kinds.append(
                        f"- gemma, {name} {split}: {len(part)} answers told a note as the person "
                        "said it instead of the model's answer (not supported, or \"I don't "
                        f'know.") : {_spread(part)}'
                    )
                    part = [a for a in answers if a.q["split"] == split and a.asked_again]
                    kinds.append(
                        f"- gemma, {name} {split}: {len(part)} answers came from the model "
                        f"asked again with one note alone (its first answer not supported): "
                        f"{_spread(part)}"
                    )
                    part = [a for a in answers if a.q["split"] == split and a.changed]
                    kinds.append(
                        f"- gemma, {name} {split}: {len(part)} answers told a later note that "
                        f"changed what they say after them: {_spread(part)}"
                    )
            for a in answers + told:
                if unclean(a.text) and len(unclean_examples) < 6:
                    unclean_examples.append(f"- {model}: {unclean(a.text)}: {a.text[:80]!r}")
                if model == "gemma" and not a.stopped and len(long_examples) < 6:
                    long_examples.append(f"- {a.q['q']!r} -> {a.text[:100]!r} ({a.finish})")
                dump.append(
                    {
                        "model": model,
                        "set": name,
                        **a.q,
                        "answer": a.text,
                        "finish": a.finish,
                        "seconds": round(a.seconds, 3),
                        "right": a.right,
                        "unsupported": a.unsupported,
                        "quoted": a.quoted,
                        "asked_again": a.asked_again,
                        "changed": a.changed,
                        "unclean": unclean(a.text),
                    }
                )
    described = "; ".join(
        f"{name}.json: {len(d['statements'])} statements told in {len(d['conversations'])} "
        f"conversations, {len(d['questions'])} questions"
        for name, d in sets.items()
    )
    body = "\n".join(
        [
            "## Answers from memory (bench/answers.py)",
            "",
            f"Machine: {machine()}. Commit {git_rev()}. Command: `.venv/bin/python "
            f"bench/answers.py`. Sets (bench/data): {described}. Each set's statements are told "
            "to a fresh profile (corrections last), then a restart, then every question is "
            "asked in a new conversation, through `MemosAPI.chat` with the app's defaults. "
            "**dev** (answers.json) and **tune** (answers_tune.json) were used to tune the "
            "completion prompt, the check of unsupported answers and the question patterns of "
            "the answers said from memory; **test** (answers.json) and **holdout** "
            "(answers_holdout.json, written by someone who had not seen those rules) were not "
            "looked at while tuning. Time is from the call to the end "
            "of the stream (retrieval, prompt, KV "
            "restore, generation and recording). *tiny* is a random-weight model (its ChatML "
            "template makes it a chat model); *tiny-completion* is the same model given the "
            'completion prompt (`[engine] prompt_style = "completion"`). Random text must '
            'score nothing: it does not stop and holds no right fact. Its "I don\'t know" is '
            "the app's, not the model's: under the completion prompt the check of unsupported "
            "answers replaces the random text with it. Under the completion prompt a question "
            "one memory answers (one slot's value, the instruction asked about, a yes/no or a "
            "choice a note settles) is said from that memory without generating "
            "(memory/slot_answers.py, memory/note_answers.py), for any model: those answers "
            "are counted below, and they are why *tiny-completion* has right answers.",
            "",
            head,
            *rows,
            "",
            "The same scores for the answers to the statements themselves (while telling):",
            "",
            head,
            *told_rows,
            "",
            "Right answers by kind of question:",
            "",
            *kinds,
            *(
                ["", "Unclean answers (first few):", "", *unclean_examples]
                if unclean_examples
                else []
            ),
            *(
                ["", "Gemma answers that did not stop by themselves:", "", *long_examples]
                if long_examples
                else []
            ),
        ]
    )
    print(body)
    if args.dump:
        Path(args.dump).write_text(json.dumps(dump, indent=1), encoding="utf-8")
    if not args.no_write:
        write_section("answers", body)


if __name__ == "__main__":
    main()

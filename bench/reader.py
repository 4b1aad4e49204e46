"""The rule reader on labelled user utterances: is it a memory, and of which types.

Usage: .venv/bin/python bench/reader.py [--no-write] [--errors dev]

The sets are in bench/data (see its README): the rules were tuned on reader_dev.jsonl only;
reader_test.jsonl was written before the rules and is reported, never tuned on. An utterance
counts as "a memory" when the reader (`memory.reader.read_message`, what a chat turn stores)
makes at least one memory from it; its type is right
when the set of the statements' types equals the labelled set (over utterances that are a
memory in both the label and the prediction).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import git_rev, machine, write_section
from memos_desktop.memory.reader import read_message
from memos_desktop.store.records import Message


def read(text: str) -> list:
    """What the chat turn stores from one user message (rules + the grounding test)."""
    msg = Message("m", "c", 0, "user", text, 0.0, {})
    return [r.statement for r in read_message(msg)]


DATA = Path(__file__).resolve().parent / "data"
TARGETS = {"precision": 0.9, "recall": 0.8}


def load(part: str) -> list[dict]:
    with (DATA / f"reader_{part}.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def evaluate(rows: list[dict]) -> tuple[dict[str, float], list[str]]:
    tp = fp = fn = tn = typed = typed_ok = 0
    errors: list[str] = []
    t0 = time.perf_counter()
    for r in rows:
        st = read(r["text"])
        pred = bool(st)
        types = sorted({s.type for s in st})
        if pred and r["memory"]:
            tp += 1
            typed += 1
            if types == sorted(r["types"]):
                typed_ok += 1
            else:
                errors.append(
                    f"type  {r['text']!r}: {types} != {r['types']}  {[s.text for s in st]}"
                )
        elif pred:
            fp += 1
            errors.append(f"FP    {r['text']!r}: {[(s.type, s.text) for s in st]}")
        elif r["memory"]:
            fn += 1
            errors.append(f"FN    {r['text']!r}: {r['types']}")
        else:
            tn += 1
    ms = (time.perf_counter() - t0) * 1000 / max(1, len(rows))
    p = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return {
        "n": len(rows),
        "memories": tp + fn,
        "precision": p,
        "recall": rec,
        "f1": 2 * p * rec / (p + rec) if p + rec else 0.0,
        "type_acc": typed_ok / typed if typed else 0.0,
        "questions_kept": sum(
            1
            for r in rows
            if r["text"].rstrip().endswith("?") and not r["memory"] and read(r["text"])
        ),
        "ms": ms,
    }, errors


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--errors", choices=["dev", "test"], help="print the misread utterances")
    args = ap.parse_args()
    results = {}
    for part in ("dev", "test"):
        results[part], errors = evaluate(load(part))
        if args.errors == part:
            print("\n".join(errors))
    lines = [
        "## Reader (issue 10): is it a memory, and its type",
        "",
        f"`.venv/bin/python bench/reader.py` on {machine()}, commit {git_rev()}. The rule "
        "reader (`memory/statements.py`, no model) on hand-labelled user utterances "
        "(bench/data/README.md). **dev**: the rules were tuned on it; **test**: written "
        "before the rules, never tuned on. Targets: precision >= 0.9, recall >= 0.8 of "
        '"is a memory".',
        "",
        "| part | utterances | memories | precision | recall | F1 | type accuracy "
        "| questions kept as memory | ms / utterance |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for part, m in results.items():
        lines.append(
            f"| {part} | {m['n']} | {m['memories']} | {m['precision']:.3f} | "
            f"{m['recall']:.3f} | {m['f1']:.3f} | {m['type_acc']:.3f} | "
            f"{m['questions_kept']} | {m['ms']:.2f} |"
        )
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("reader", body)


if __name__ == "__main__":
    main()

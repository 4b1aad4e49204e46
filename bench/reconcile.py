"""Near-duplicate threshold for reconciliation, measured on labelled pairs with MiniLM.

Usage: .venv/bin/python bench/reconcile.py [--no-write]

A false merge (two different facts treated as one) loses information; a missed duplicate only
costs a redundant memory. So the rule is chosen for zero false merges first. The pairs below are
hand-labelled: paraphrases and restatements (duplicates), and the hard negatives that near-
duplicate detectors are known to merge: same sentence with another number, date, name or place,
and negations.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._report import git_rev, machine, write_section
from memos_desktop.config import resolve_paths
from memos_desktop.engines.loader import load_embedder
from memos_desktop.memory.reconcile import Thresholds, anchors, jaccard

DUPLICATES = [
    ("I am vegetarian", "I'm a vegetarian"),
    ("My sister lives in Lisbon", "my sister lives in Lisbon."),
    ("Alice works as a nurse", "Alice works as a nurse at the moment"),
    ("I prefer short answers", "I prefer answers that are short"),
    ("Bob's birthday is on May 3", "Bob's birthday is May 3"),
    ("I have two cats named Tom and Jerry", "I have two cats, Tom and Jerry"),
    ("We are moving to Berlin next spring", "We're moving to Berlin next spring"),
    ("I started learning the guitar in 2021", "I began learning guitar in 2021"),
    ("My favourite food is sushi", "My favorite food is sushi"),
    ("Carol is allergic to penicillin", "Carol has an allergy to penicillin"),
    ("I run every morning before work", "Every morning before work I go running"),
    ("The meeting with Dana is on Friday", "The meeting with Dana is on Friday."),
    ("I drink my coffee black", "I take my coffee black"),
    ("Eve's daughter is called Mira", "Eve has a daughter called Mira"),
    ("I don't eat pork", "I do not eat pork"),
]
DIFFERENT = [
    ("Bob's birthday is on May 3", "Bob's birthday is on May 4"),
    ("My sister lives in Lisbon", "My sister lives in Porto"),
    ("My sister lives in Lisbon", "My brother lives in Lisbon"),
    ("Alice works as a nurse", "Alice works as a teacher"),
    ("I have two cats", "I have three cats"),
    ("The meeting is on Friday at 10", "The meeting is on Friday at 11"),
    ("I like jazz", "I don't like jazz"),
    ("Carol is allergic to penicillin", "Carol is allergic to peanuts"),
    ("My flight to Rome leaves on 12 June", "My flight to Rome leaves on 21 June"),
    ("Dana moved to Berlin in 2019", "Dana moved to Berlin in 2020"),
    ("I started learning the guitar", "I stopped learning the guitar"),
    ("Eve's daughter is called Mira", "Eve's daughter is called Nora"),
    ("My PIN is 4312", "My PIN is 4321"),
    ("I prefer tea in the morning", "I prefer coffee in the morning"),
    ("Tom is my manager", "Tom is my brother"),
    ("We adopted a dog", "We adopted a cat"),
    ("Frank lives on the 3rd floor", "Frank lives on the 5th floor"),
    ("I am vegetarian", "I am vegan"),
]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    os.environ["MEMOS_DESKTOP_HOME"] = tempfile.mkdtemp(prefix="memos-rec-")
    emb = load_embedder(resolve_paths(), "all-minilm-l6-v2")
    pairs = [(a, b, True) for a, b in DUPLICATES] + [(a, b, False) for a, b in DIFFERENT]
    va = emb.embed([a for a, _, _ in pairs])
    vb = emb.embed([b for _, b, _ in pairs])
    cos = np.sum(va * vb, axis=1)
    t = Thresholds()
    rows = []
    for thr in (0.80, 0.85, 0.90, 0.93, 0.95, 0.97):
        cos_only = [c >= thr for c in cos]
        guarded = [
            c >= thr and anchors(a) == anchors(b) and jaccard(a, b) >= t.dup_jaccard
            for c, (a, b, _) in zip(cos, pairs, strict=True)
        ]
        for name, pred in (("cosine only", cos_only), ("cosine + words + anchors", guarded)):
            fm = sum(p and not d for p, (_, _, d) in zip(pred, pairs, strict=True))
            hit = sum(p and d for p, (_, _, d) in zip(pred, pairs, strict=True))
            rows.append((thr, name, fm, hit))
    guarded_at = [
        (float(c), a, b)
        for c, (a, b, d) in zip(cos, pairs, strict=True)
        if not d
        and c >= t.dup_cosine
        and anchors(a) == anchors(b)
        and jaccard(a, b) >= t.dup_jaccard
    ]
    neg = sorted(
        ((float(c), a, b) for c, (a, b, d) in zip(cos, pairs, strict=True) if not d), reverse=True
    )
    lines = [
        "## Reconciliation threshold (`bench/reconcile.py`)",
        "",
        f"Command: `.venv/bin/python bench/reconcile.py` (commit {git_rev()})  ",
        f"Machine: {machine()}  ",
        f"{len(DUPLICATES)} duplicate pairs and {len(DIFFERENT)} hard different pairs "
        "(another number, date, name, place, or a negation), MiniLM-L6 cosine. "
        f"The shipped rule: cosine >= {t.dup_cosine}, word Jaccard >= {t.dup_jaccard}, same "
        "numbers and names.",
        "",
        f"| cosine threshold | rule | false merges (of {len(DIFFERENT)}) "
        f"| duplicates caught (of {len(DUPLICATES)}) |",
        "|---:|---|---:|---:|",
    ]
    lines += [f"| {thr:.2f} | {name} | {fm} | {hit} |" for thr, name, fm, hit in rows]
    lines += ["", f"False merges left by the shipped rule: {len(guarded_at)}"]
    lines += [f'- {c:.3f}: "{a}" vs "{b}"' for c, a, b in guarded_at]
    lines += ["", "Most similar different pairs (why cosine alone is not enough):", ""]
    lines += [f'- {c:.3f}: "{a}" vs "{b}"' for c, a, b in neg[:5]]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("reconcile", body)


if __name__ == "__main__":
    main()

"""Ends a base model's answer that loops: a sentence said again, or a clause said twice in a
row. The start of what could be a repeat is held back until it turns out not to be one."""

from __future__ import annotations

import re

_CLAUSE = re.compile(r"[^.!?,;:]*[.!?,;:]+(?:\s+|$)")


def _norm(s: str) -> str:
    return " ".join(s.casefold().split())


class RepeatGuard:
    """Ends an answer that loops: a sentence said again ("You live in Porto. You live in
    Porto."), or a clause said twice in a row ("14/1/2014, 14/1/2014"). The start of what
    could be such a repeat is held back until it turns out not to be one, so a repeat is never
    shown."""

    def __init__(self) -> None:
        self.text = ""
        self.shown = 0
        self.done = False

    def feed(self, piece: str) -> str:
        """Text that may be shown now (``done`` is set when the answer should end here)."""
        if self.done:
            return ""
        self.text += piece
        return self._scan(final=False)

    def finish(self) -> str:
        """The rest, when the stream has ended (its last sentence is complete now)."""
        return "" if self.done else self._scan(final=True)

    def _scan(self, *, final: bool) -> str:
        sentences: list[str] = []  # complete sentences so far
        sentence = ""  # the clauses of the sentence being read
        last = ""  # the clause before
        start = 0  # where that sentence began
        pos = 0
        for m in _CLAUSE.finditer(self.text):
            if not final and m.end() == len(self.text) and not m.group(0)[-1].isspace():
                break  # "... 3." may still be "3.5": not known to be complete yet
            clause = _norm(m.group(0))
            if not sentence:
                start = m.start()
            sentence = f"{sentence} {clause}".strip()
            ends = clause[-1] in ".!?"
            if len(clause) >= 3 and clause == last:
                return self._stop(m.start())
            if ends and len(sentence.split()) >= 2 and sentence in sentences:
                return self._stop(start)
            if ends:
                sentences.append(sentence)
                sentence = ""
            last = clause
            pos = m.end()
        tail = _norm(self.text[pos:])
        could_repeat = any(x.startswith(tail) for x in (*sentences, last) if x)
        hold = not final and bool(tail) and could_repeat
        return self._show(pos if hold else len(self.text))

    def _stop(self, at: int) -> str:
        self.done = True
        self.text = self.text[:at].rstrip()
        return self._show(len(self.text))

    def _show(self, upto: int) -> str:
        upto = max(upto, self.shown)
        out = self.text[self.shown : upto]
        self.shown = upto
        return out

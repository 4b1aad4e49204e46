"""Rendering chat messages into prompt text, and finding the stable prefix of a prompt.

Design rule: the *stable prefix* of a conversation is its leading system messages, rendered and
cut exactly where the content of the next user message would start. The engine tokenizes that
text on its own, so its tokens (and a saved KV state of them) do not depend on what follows. The
cut is found by rendering a sentinel user message, so it works for any template.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from memos_desktop.engines.base import ChatMessage
from memos_desktop.errors import EngineError, InvalidInputError

CHAT_FORMATS = ("template", "gemma", "chatml")
ROLES = ("system", "user", "assistant")
_SENTINEL = "\x00memos-prefix-end\x00"


def render_gemma(messages: Sequence[ChatMessage]) -> str:
    """Gemma turns. Gemma has no system role: system text goes first in the next user turn (as
    Google's own template does); llama-cpp-python's "gemma" format would drop it."""
    out: list[str] = []
    system: list[str] = []
    for m in messages:
        if m.role == "system":
            system.append(m.content)
            continue
        content = m.content
        if m.role == "user" and system:
            content = "\n\n".join([*system, content])
            system = []
        role = "model" if m.role == "assistant" else "user"
        out.append(f"<start_of_turn>{role}\n{content}<end_of_turn>\n")
    if system:
        out.append("<start_of_turn>user\n" + "\n\n".join(system) + "<end_of_turn>\n")
    out.append("<start_of_turn>model\n")
    return "".join(out)


def render_chatml(messages: Sequence[ChatMessage]) -> str:
    return (
        "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in messages)
        + "<|im_start|>assistant\n"
    )


class PromptFormat:
    """Renders messages with one chat format: the GGUF's own Jinja template, "gemma" or
    "chatml". Always ends with the generation prompt (the assistant's turn opened)."""

    def __init__(
        self,
        fmt: str,
        *,
        template: str | None = None,
        bos_token: str = "",
        eos_token: str = "",
        model_id: str = "the model",
    ) -> None:
        if fmt not in CHAT_FORMATS or (fmt == "template" and not template):
            raise InvalidInputError(
                f"unknown or unavailable chat format {fmt!r}",
                hint=f"use one of {', '.join(CHAT_FORMATS)}",
            )
        self.name = fmt
        self.model_id = model_id
        self._jinja = (
            Jinja2ChatFormatter(template=str(template), bos_token=bos_token, eos_token=eos_token)
            if fmt == "template"
            else None
        )

    def render(self, messages: Sequence[ChatMessage]) -> str:
        for m in messages:
            if m.role not in ROLES:
                raise InvalidInputError(
                    f"unknown message role {m.role!r}", hint="use system, user or assistant"
                )
        if self._jinja is not None:
            try:
                msgs: Any = [{"role": m.role, "content": m.content} for m in messages]
                return self._jinja(messages=msgs).prompt
            except Exception as exc:  # a template error is the model's, not the user's
                raise EngineError(
                    f"the chat template of {self.model_id} failed: {exc}",
                    hint="set chat_format to 'chatml' or 'gemma'",
                ) from exc
        if self.name == "gemma":
            return render_gemma(messages)
        return render_chatml(messages)

    def prefix_text(self, prefix: Sequence[ChatMessage]) -> str:
        """The rendered text of ``prefix``, cut where the content of a following user message
        would start (so it is a text prefix of any conversation that begins with ``prefix``)."""
        full = self.render([*prefix, ChatMessage("user", _SENTINEL)])
        cut = full.find(_SENTINEL)
        if cut < 0:
            raise EngineError(
                f"the chat template of {self.model_id} drops user messages",
                hint="set chat_format to 'chatml' or 'gemma'",
            )
        return full[:cut]

    def split(self, messages: Sequence[ChatMessage]) -> tuple[str, str]:
        """(stable prefix text, the rest) of the prompt of ``messages``."""
        n = 0
        while n < len(messages) and messages[n].role == "system":
            n += 1
        full = self.render(messages)
        head = self.prefix_text(messages[:n])
        if full.startswith(head):
            return head, full[len(head) :]
        return full, ""  # a template that rewrites earlier turns: no stable prefix

"""Rendering chat messages into prompt text, finding the stable prefix of a prompt, and telling
a base (completion) model from an instruction-tuned (chat) one.

Design rules:
- The *stable prefix* of a conversation is its leading system messages, rendered and cut exactly
  where the content of the next user message would start. The engine tokenizes that text on its
  own, so its tokens (and a saved KV state of them) do not depend on what follows. The cut is
  found by rendering a sentinel user message, so it works for any template.
- A *completion* model (a base model: no chat tuning) gets no turn markers at all: the
  "completion" format writes the messages' texts one after the other, and the caller (the
  memory layer's scheduler) writes a prompt a base model continues well (few-shot, ending in a
  cue such as "Answer:"). A *chat* model keeps its own template. Which kind a model is comes
  from the person's setting, else the catalog, else the GGUF metadata (:func:`prompt_style`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from memos_desktop.engines.base import ChatMessage
from memos_desktop.errors import EngineError, InvalidInputError

CHAT_FORMATS = ("template", "gemma", "chatml", "completion")
ROLES = ("system", "user", "assistant")
PROMPT_STYLES = ("auto", "completion", "chat")
# Turn markers of the chat formats we know: generating one means the model starts a turn of its
# own, so the answer ends there (as a token, and as text when spelled out piece by piece).
TURN_MARKERS = (
    "<end_of_turn>",
    "<start_of_turn>",
    "<|im_end|>",
    "<|im_start|>",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|endoftext|>",
)
_SENTINEL = "\x00memos-prefix-end\x00"

# Names of instruction-tuned releases: "gemma-3-270m-it", "Qwen2.5-0.5B-Instruct", "...-chat".
_INSTRUCT = re.compile(r"(?:^|[^a-z0-9])(?:it|instruct|chat|sft|dpo|rlhf)(?:$|[^a-z0-9])", re.I)
_BASE = re.compile(r"(?:^|[^a-z0-9])(?:base|pretrain(?:ed)?|pt)(?:$|[^a-z0-9])", re.I)


def prompt_style(
    setting: str = "auto",
    *,
    catalog: str = "",
    names: Sequence[str] = (),
    has_template: bool = False,
) -> str:
    """ "completion" or "chat" for a model. ``setting`` (the person's ``[engine] prompt_style``)
    wins unless "auto"; then the catalog's word; then the model's names (GGUF ``general.name``,
    ``general.finetune``, file stem: "-it" / "instruct" / "chat" mean chat, "base" / "pt" mean
    completion); then a chat template in the file means chat; no template means completion."""
    if setting not in PROMPT_STYLES:
        raise InvalidInputError(
            f"unknown prompt style {setting!r}",
            hint=f"use one of {', '.join(PROMPT_STYLES)} ([engine] prompt_style in config.toml)",
        )
    if setting != "auto":
        return setting
    if catalog:
        return prompt_style(catalog)
    if any(_INSTRUCT.search(n) for n in names if n):
        return "chat"
    if any(_BASE.search(n) for n in names if n):
        return "completion"
    return "chat" if has_template else "completion"


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


def render_completion(messages: Sequence[ChatMessage]) -> str:
    """Plain text for a base model: the messages' texts, one after the other, no turn markers
    and no generation cue (the caller's prompt ends with its own, e.g. "Answer:")."""
    return "\n".join(m.content for m in messages)


def render_chatml(messages: Sequence[ChatMessage]) -> str:
    return (
        "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in messages)
        + "<|im_start|>assistant\n"
    )


class PromptFormat:
    """Renders messages with one format: the GGUF's own Jinja template, "gemma" or "chatml"
    (these end with the generation prompt: the assistant's turn opened), or "completion"
    (plain text, see :func:`render_completion`)."""

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
        if self.name == "completion":
            return render_completion(messages)
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

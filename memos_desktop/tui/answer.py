"""The assistant's answer: a Markdown widget (code blocks highlighted). A module of its own so
the Markdown parser is imported after the first paint, with the first answer."""

from __future__ import annotations

from textual.widgets import Markdown


class AssistantMessage(Markdown):
    DEFAULT_CSS = """
    AssistantMessage { margin: 1 8 0 0; padding: 0 1; border-left: thick $success; }
    AssistantMessage.cancelled { border-left: thick $warning; }
    AssistantMessage.failed { border-left: thick $error; }
    """

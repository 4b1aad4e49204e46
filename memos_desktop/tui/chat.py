"""The chat screen: streaming Markdown answers, the memories each answer used, slash commands.

Design rules:
- Generation runs in a worker thread that posts one message per piece of text; the UI appends
  through a MarkdownStream, which coalesces pieces when they come faster than it can render.
- Escape cancels: the engine stops at the next token, and the question goes back in the prompt
  (sent again, it replaces the stopped exchange's memories: see memory/chat.py). A new chat
  (Ctrl+N) starts with an empty prompt.
- Temporary mode writes nothing (no conversation, message, memory or KV state).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Key
from textual.message import Message
from textual.widgets import Footer, Header, Input, Label, OptionList, Static

from memos_desktop.errors import AmbiguousError, MemosError
from memos_desktop.tui.base import MemosScreen
from memos_desktop.tui.widgets import (
    StatusBar,
    UsedMemories,
    UserMessage,
)

if TYPE_CHECKING:
    from textual.widgets.markdown import MarkdownStream

    from memos_desktop.api import CancelToken, ChatTurn, Session, UsedMemory
    from memos_desktop.tui.answer import AssistantMessage

SLASH_HELP = (
    "/remember TEXT · /forget ID · /correct TEXT · /cube NAME (switch or create) · /model ID · "
    "/temp · /new · /help"
)


class PromptInput(Input):
    """The message box, with prompt history on Up / Down."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history: list[str] = []
        self._pos: int | None = None

    def remember(self, text: str) -> None:
        if text and (not self.history or self.history[-1] != text):
            self.history.append(text)
        self._pos = None

    def on_key(self, event: Key) -> None:
        if event.key not in ("up", "down") or not self.history:
            return
        event.stop()
        event.prevent_default()
        if event.key == "up":
            self._pos = len(self.history) - 1 if self._pos is None else max(0, self._pos - 1)
        else:
            if self._pos is None:
                return
            self._pos += 1
            if self._pos >= len(self.history):
                self._pos = None
                self.value = ""
                return
        self.value = self.history[self._pos]
        self.cursor_position = len(self.value)


class ChatScreen(MemosScreen):
    NAME = "Chat"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Stop", id="chat.cancel"),
        Binding("ctrl+n", "new_chat", "New chat", id="chat.new"),
        Binding("ctrl+o", "conversations", "Chats", id="chat.conversations"),
        Binding("ctrl+t", "toggle_temporary", "Temporary", id="chat.temporary"),
        Binding("ctrl+g", "focus_used", "Used memories", id="chat.used"),
        Binding("ctrl+b", "toggle_panel", "Hide/show panel", id="chat.panel", show=False),
    ]

    class Started(Message):
        def __init__(
            self, gen: int, used: tuple[UsedMemory, ...], kv_restored: bool, prefix: int
        ) -> None:
            super().__init__()
            self.gen = gen
            self.used = used
            self.kv_restored = kv_restored
            self.prefix = prefix

    class Piece(Message):
        def __init__(self, gen: int, text: str) -> None:
            super().__init__()
            self.gen = gen
            self.text = text

    class Finished(Message):
        def __init__(self, gen: int, turn: ChatTurn) -> None:
            super().__init__()
            self.gen = gen
            self.turn = turn

    class Failed(Message):
        def __init__(self, gen: int, error: BaseException) -> None:
            super().__init__()
            self.gen = gen
            self.error = error

    def __init__(self) -> None:
        super().__init__()
        self.conversation_id: str | None = None
        self.temporary = False
        self._cancel: CancelToken | None = None
        self._question = ""
        self._answer: AssistantMessage | None = None
        self._stream: MarkdownStream | None = None
        self.generating = False
        # Bumped by each send, new chat and opened conversation: messages of an answer that
        # was left (new chat while it streamed) no longer touch the transcript.
        self._gen = 0

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Horizontal(id="chat-body"):
            with Vertical(id="chat-main"):
                with VerticalScroll(id="transcript"):
                    yield Static(
                        "Opening your encrypted profile…  Type a message below; " + SLASH_HELP,
                        classes="chat-hint",
                    )
                yield Static("", id="temp-banner")
                yield PromptInput(
                    placeholder="Message (Enter to send, / for commands)", id="prompt"
                )
            with Vertical(id="memory-panel"):
                yield Label("Memories used", classes="panel-title")
                yield UsedMemories(id="used")
                yield Static("", id="kv-line")
        yield StatusBar()
        yield Footer()

    def setup(self) -> None:
        self.query_one(PromptInput).focus()
        if self.memos.session is not None:
            self._session_ready()

    def on_memos_app_session_opened(self, _: Any = None) -> None:
        self._session_ready()

    def _session_ready(self) -> None:
        if self.memos.read_only is not None:
            prompt = self.query_one(PromptInput)
            prompt.disabled = True
            prompt.placeholder = "Read-only: chat in the other memos-desktop window"
            for hint in self.query(".chat-hint").results(Static):
                hint.update(
                    f"Read-only ({self.memos.read_only}). Browse and search memories (F3); "
                    "chat and changes happen in the other window."
                )
            return
        for hint in self.query(".chat-hint").results(Static):
            hint.update("Ask anything. What you tell me is remembered, encrypted. " + SLASH_HELP)

    def on_memos_app_model_ready(self, msg: Any) -> None:
        self.memos.refresh_status()

    # --- sending -------------------------------------------------------------------------------

    @on(Input.Submitted, "#prompt")
    def submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        prompt = self.query_one(PromptInput)
        prompt.remember(text)
        prompt.value = ""
        if text.startswith("/"):
            self.slash(text)
            return
        self.send(text)

    def send(self, text: str) -> None:
        app = self.memos
        if app.session is None:
            app.notify("Still opening your profile; try again in a moment.", severity="warning")
            self.query_one(PromptInput).value = text
            return
        if self.generating:
            app.notify("An answer is still streaming (Escape stops it).", severity="warning")
            self.query_one(PromptInput).value = text
            return
        if app.model_error:
            app.notify(app.model_error, title="No chat model", severity="error")
            self.query_one(PromptInput).value = text
            return
        self._question = text
        transcript = self.query_one("#transcript", VerticalScroll)
        transcript.mount(UserMessage(text))
        from memos_desktop.tui.answer import AssistantMessage

        self._answer = AssistantMessage("…")
        transcript.mount(self._answer)
        transcript.scroll_end(animate=False)
        self._stream = None
        self.generating = True
        from memos_desktop.api import CancelToken  # numpy: not needed for first paint

        self._cancel = CancelToken()
        self._gen += 1
        app.set_state("generating")
        self.generate(
            app.session, self._gen, text, self.conversation_id, self.temporary, self._cancel
        )

    @work(thread=True, group="chat", description="generate an answer")
    def generate(
        self,
        session: Session,
        gen: int,
        text: str,
        conversation_id: str | None,
        temporary: bool,
        cancel: CancelToken,
    ) -> None:
        try:
            turn = session.api.chat(text, conversation_id, temporary=temporary, cancel=cancel)
            self.post_message(self.Started(gen, turn.used, turn.kv_restored, turn.prefix_tokens))
            for piece in turn:  # the API takes its lock per piece: other calls interleave
                self.post_message(self.Piece(gen, piece))
        except Exception as exc:  # shown in the transcript; the app keeps running
            self.post_message(self.Failed(gen, exc))
            return
        self.post_message(self.Finished(gen, turn))

    def on_chat_screen_started(self, msg: Started) -> None:
        if msg.gen != self._gen:
            return
        self.query_one(UsedMemories).show(msg.used)
        st = self.memos.status
        st.kv = "hit" if msg.kv_restored else "miss"
        n = len(msg.used)
        self.query_one("#kv-line", Static).update(
            f"{n} memor{'y' if n == 1 else 'ies'} · prefix {msg.prefix} tokens "
            f"({'restored from activation memory' if msg.kv_restored else 'computed'})"
        )
        self.memos.refresh_status()

    async def on_chat_screen_piece(self, msg: Piece) -> None:
        if self._answer is None or msg.gen != self._gen:
            return
        if self._stream is None:
            await self._answer.update("")
            self._stream = self._answer.get_stream(self._answer)
        await self._stream.write(msg.text)
        self.query_one("#transcript", VerticalScroll).scroll_end(animate=False)

    async def on_chat_screen_finished(self, msg: Finished) -> None:
        if msg.gen != self._gen:
            self._done()  # an answer that was left: it is recorded, but not shown here
            return
        if self._stream is not None:
            await self._stream.stop()
        turn = msg.turn
        st = self.memos.status
        cancelled = turn.stats is not None and turn.stats.finish_reason == "cancelled"
        if turn.stats is not None:
            st.ttft_s = turn.stats.ttft_s
            st.tokens_per_s = turn.stats.tokens_per_s
            st.context_used = turn.stats.prompt_tokens + turn.stats.completion_tokens
        if self._answer is not None:
            if not turn.answer.strip():
                await self._answer.update("_(no answer)_" if not cancelled else "_(stopped)_")
            if cancelled:
                self._answer.add_class("cancelled")
        if not self.temporary and turn.conversation_id:
            self.conversation_id = turn.conversation_id
        if cancelled:
            prompt = self.query_one(PromptInput)
            prompt.value = self._question
            prompt.cursor_position = len(prompt.value)
        self._done()
        if self.memos.session is not None and not self.temporary:
            self.memos.status.pending_jobs += 1

    async def on_chat_screen_failed(self, msg: Failed) -> None:
        if msg.gen != self._gen:
            self._done()
            return
        if self._answer is not None:
            self._answer.add_class("failed")
            await self._answer.update(f"**Error:** {msg.error}")
        prompt = self.query_one(PromptInput)
        prompt.value = self._question
        self._done()

    def _done(self) -> None:
        # self._gen is not reset here: it only ever grows, so no message of an answer that was
        # left behind can ever match a later one.
        self.generating = False
        self._answer = None
        self._stream = None
        self._cancel = None
        self.memos.set_state("ready" if not self.memos.model_error else "no model")
        self.query_one(PromptInput).focus()

    # --- actions -------------------------------------------------------------------------------

    def action_cancel(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()
            self.memos.notify("Stopped; your message is back in the prompt.", timeout=3)

    async def action_new_chat(self) -> None:
        if self.generating and self._cancel is not None:
            self._cancel.cancel()
        self._gen += 1
        self.conversation_id = None
        transcript = self.query_one("#transcript", VerticalScroll)
        await transcript.remove_children()
        await transcript.mount(Static("New conversation. " + SLASH_HELP, classes="chat-hint"))
        self.query_one(UsedMemories).clear_options()
        self.query_one("#kv-line", Static).update("")
        # A new chat starts with an empty prompt (not a stopped question, not a draft).
        prompt = self.query_one(PromptInput)
        prompt.value = ""
        prompt.remember("")  # leaves the history, resets its position
        prompt.focus()

    def action_toggle_temporary(self) -> None:
        self.set_temporary(not self.temporary)

    def set_temporary(self, on_: bool) -> None:
        self.temporary = on_
        self.memos.status.temporary = on_
        banner = self.query_one("#temp-banner", Static)
        banner.update(
            "Temporary chat: nothing from this chat is remembered or saved." if on_ else ""
        )
        banner.set_class(on_, "on")
        if on_:
            self.conversation_id = None
        self.memos.refresh_status()

    def action_toggle_panel(self) -> None:
        panel = self.query_one("#memory-panel")
        panel.display = not panel.display

    def action_focus_used(self) -> None:
        self.query_one(UsedMemories).focus()

    @on(OptionList.OptionSelected, "#used")
    def open_used(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            from memos_desktop.tui.memories import MemoryDetail

            self.app.push_screen(MemoryDetail(event.option.id))

    def action_conversations(self) -> None:
        from memos_desktop.tui.conversations import ConversationsScreen

        def chosen(conv_id: str | None) -> None:
            if conv_id:
                self.load_conversation(conv_id)

        self.app.push_screen(ConversationsScreen(), chosen)

    def load_conversation(self, conv_id: str) -> None:
        async def show(data: tuple[Any, list[Any]]) -> None:
            conv, messages = data
            if self.generating and self._cancel is not None:
                self._cancel.cancel()
            self._gen += 1
            self.set_temporary(False)
            transcript = self.query_one("#transcript", VerticalScroll)
            await transcript.remove_children()
            await transcript.mount(
                Static(f"[b]{conv.title or 'Conversation'}[/b]", classes="chat-hint")
            )
            last_used: list[Any] = []
            for m in messages:
                if m.role == "user":
                    transcript.mount(UserMessage(m.content))
                else:
                    from memos_desktop.tui.answer import AssistantMessage

                    w = AssistantMessage(m.content or "_(no answer)_")
                    if m.meta.get("cancelled"):
                        w.add_class("cancelled")
                    transcript.mount(w)
                    last_used = m.meta.get("used") or []
            from memos_desktop.api import UsedMemory

            self.query_one(UsedMemories).show(tuple(UsedMemory.from_json(u) for u in last_used))
            n = len(last_used)
            self.query_one("#kv-line", Static).update(
                f"{n} memor{'y' if n == 1 else 'ies'} used by the last answer" if messages else ""
            )
            transcript.scroll_end(animate=False)
            self.conversation_id = conv.id
            self.query_one(PromptInput).focus()

        self.memos.run_api(lambda s: (s.api.conversation(conv_id), s.api.messages(conv_id)), show)

    # --- slash commands ------------------------------------------------------------------------

    def slash(self, line: str) -> None:
        cmd, _, arg = line.partition(" ")
        arg = arg.strip()
        app = self.memos
        if cmd in ("/help", "/?"):
            app.notify(SLASH_HELP, title="Commands", timeout=10)
        elif cmd == "/new":
            self.call_later(self.action_new_chat)
        elif cmd == "/temp":
            self.set_temporary(not self.temporary if not arg else arg in ("on", "yes", "1"))
        elif cmd == "/remember" and arg:
            app.run_api(
                lambda s: s.api.remember(arg),
                lambda r: app.notify(f"{r[0].action}: {r[1].text}", title="Remembered"),
            )
        elif cmd == "/forget" and arg:
            app.run_api(
                lambda s: s.api.forget(s.api.get(arg).id, reason="forgotten in chat"),
                lambda it: app.notify(f"Forgot: {it.text}", title="Forgotten"),
            )
        elif cmd == "/correct" and arg:
            self.correct(arg)
        elif cmd == "/cube":
            if not arg:
                app.run_api(
                    lambda s: s.api.list_cubes(),
                    lambda cubes: app.notify(
                        ", ".join(c.name for c in cubes), title=f"Cubes (now: {app.status.cube})"
                    ),
                )
            else:

                def switched(cube: Any) -> None:
                    app.status.cube = cube.name
                    self.call_later(self.action_new_chat)
                    app.refresh_status()
                    app.notify(f"Now using cube {cube.name} (a new conversation)")

                def use_or_create(s: Session) -> Any:
                    if arg not in {c.name for c in s.api.list_cubes()}:
                        s.api.create_cube(arg)
                    return s.api.use_cube(arg)

                app.run_api(use_or_create, switched)
        elif cmd == "/model":
            if not arg:
                app.notify(f"Chat model: {app.settings.models.chat}. F5 lists the models.")
            else:
                try:
                    app.switch_chat_model(arg, kind="chat")
                except MemosError as exc:
                    app.show_error(exc)
        else:
            app.notify(f"Unknown or incomplete command {cmd!r}. {SLASH_HELP}", severity="warning")

    def correct(self, text: str) -> None:
        """``/correct TEXT``: when several memories could be meant, the person picks one (or
        none) instead of the app guessing."""
        app = self.memos

        def corrected(r: tuple[Any, Any]) -> None:
            new, old = r
            was = f" (replaces: {old.text})" if old else ""
            app.notify(f"{new.text}{was}", title="Corrected")

        def ask(exc: Exception) -> None:
            if not isinstance(exc, AmbiguousError):
                app.show_error(exc)
                return
            from memos_desktop.tui.dialogs import ChoiceScreen

            def picked(choice: str | None) -> None:
                if choice is None:
                    app.notify("Nothing changed.", title="Correction")
                    return
                app.run_api(
                    lambda s: s.api.correct(
                        text, target=choice or None, replace_nothing=choice == ""
                    ),
                    corrected,
                )

            app.push_screen(
                ChoiceScreen(
                    f"Which memory does this replace?\n{text}",
                    exc.candidates,
                    none="None of them: keep them all and remember this too",
                ),
                picked,
            )

        app.run_api(lambda s: s.api.correct(text), corrected, on_error=ask)

    def palette_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("New chat", "Start a new conversation", self.action_new_chat)
        yield SystemCommand(
            "Conversations", "Open, rename, archive, delete, export", self.action_conversations
        )
        yield SystemCommand(
            "Toggle temporary chat", "A chat that writes no memory", self.action_toggle_temporary
        )
        yield SystemCommand("Toggle memories panel", "Show or hide", self.action_toggle_panel)
        yield SystemCommand("Stop the answer", "Cancel generation", self.action_cancel)

"""The facade every front end uses (CLI, TUI, daemon): MemOS-like add / search / get / list /
update / forget / restore / purge / history, chat, users and cubes, on one open profile.

Design rules:
- Front ends call ``memos_desktop.api`` only; it calls ``memory`` / ``store`` / ``engines``.
- One :class:`MemosAPI` is safe to share between threads (``base.locked``); a chat answer
  takes the lock per token while it streams.
- Unchanged text is never embedded twice (content hash first, ``memory.ingest``).
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from memos_desktop.api.base import locked
from memos_desktop.api.conversations import ConversationsApi
from memos_desktop.api.cube_files import CubeFilesApi
from memos_desktop.api.daemon_ops import DaemonOps, answering_stream, touch_answering
from memos_desktop.api.memories import MemoriesApi
from memos_desktop.engines.base import CancelToken, SamplingParams, parse_options
from memos_desktop.errors import InvalidInputError
from memos_desktop.memory.chat import ChatService, ChatTurn
from memos_desktop.memory.consolidate import RunReport, run_pending
from memos_desktop.store.backup import BackupInfo
from memos_desktop.store.records import Cube, User


class MemosAPI(MemoriesApi, ConversationsApi, CubeFilesApi, DaemonOps):
    # --- users ------------------------------------------------------------------------------

    @locked
    def switch_user(self, name: str) -> User:
        """Each user has their own cubes (and so their own memories, KV states, adapters)."""
        self.user = self.store.users.get(name)
        self._cube = None
        return self.user

    @locked
    def create_user(self, name: str) -> User:
        return self.store.users.create(name)

    # --- cubes ------------------------------------------------------------------------------

    @locked
    def use_cube(self, name_or_id: str) -> Cube:
        self._cube = self.store.cubes.get(name_or_id, self.user)
        return self._cube

    @locked
    def list_cubes(self) -> builtins.list[Cube]:
        return self.store.cubes.list(self.user)

    @locked
    def cube_stats(self, cube: Cube | str | None = None) -> dict[str, int]:
        """Memories of a cube (default: the current one) counted by status."""
        c = cube if isinstance(cube, Cube) else self._cube_for(cube)
        return self.store.cubes.stats(c)

    @locked
    def rename_cube(self, name_or_id: str, new_name: str) -> Cube:
        cube = self.store.cubes.rename(self._cube_for(name_or_id), new_name)
        if self._cube is not None and self._cube.id == cube.id:
            self._cube = cube
        return cube

    @locked
    def delete_cube(self, name_or_id: str) -> int:
        cube = self._cube_for(name_or_id)
        n = self.store.cubes.delete(cube)
        if self._cube is not None and self._cube.id == cube.id:
            self._cube = None
        return n

    # --- chat -------------------------------------------------------------------------------

    @locked
    def chat(
        self,
        query: str,
        conversation_id: str | None = None,
        *,
        temporary: bool = False,
        sampling: SamplingParams | None = None,
        cancel: CancelToken | None = None,
        system: str = "",
        context: str = "",
        options: Mapping[str, Any] | Sequence[str] | None = None,
    ) -> ChatTurn:
        """Retrieve, assemble, stream; iterate the returned turn for text (each piece is made
        holding the API's lock, so other calls interleave with the answer). After the stream
        ends the turn is recorded (unless temporary) and its fast-mode memory is stored.
        ``system`` adds an instruction to the system prompt, ``context`` is text sent with
        the question (memories are searched with the question alone), ``options`` are
        sampling options by name (``max_tokens``, ``temperature``...; checked)."""
        if not query.strip():
            raise InvalidInputError("an empty message", hint="type something to ask")
        opts = parse_options(options or {})
        touch_answering(self.store.dir)
        svc = self._chat_service()
        turn = svc.turn(
            query,
            conversation_id,
            temporary=temporary,
            sampling=sampling,
            cancel=cancel,
            system=system,
            context=context,
            options=opts,
        )
        # While it streams the daemon pauses (issue 12: it yields to the person).
        turn._stream = answering_stream(self.store.dir, self.locked_stream(turn._stream))
        return turn

    def _chat_service(self) -> ChatService:
        """The chat of the current cube, searching it with the API's hybrid search."""
        c = self.cube
        return ChatService(
            self.store,
            self.engine,
            self._embedder_for(c),
            c,
            self.user.id,
            lambda q, k: self.search(q, top_k=k, cube=c.id).hits,
            self.budget,
        )

    @locked
    def consolidate(self, limit: int = 50) -> RunReport:
        """Run pending consolidation jobs now (fine extraction of recent conversations)."""
        return run_pending(
            self.store,
            self.engine,
            self._embedder_for(self.cube),
            user_name=self.user.display_name,
            limit=limit,
        )

    @locked
    def backup(
        self, folder: Path | None = None, *, passphrase: str | None = None, keep: int | None = None
    ) -> tuple[BackupInfo, builtins.list[Path]]:
        """An encrypted backup of this open profile (online; see api.profiles.backup), for a
        long-lived process (the app, the daemon keeping a rotating set with ``keep``)."""
        from memos_desktop.store.recovery import backup_store

        return backup_store(self.store, folder, passphrase=passphrase, keep=keep)

    @locked
    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        self.store.close()

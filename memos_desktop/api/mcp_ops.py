"""MCP policy: which client may use which cube, and how; and the audit record of every call.

Design rules:
- A client is named by the ``--client NAME`` of the host's launch command. It has no access
  until the person grants it some, per cube: ``read`` (search, get with history, the core
  profile, list) or ``write`` (read, plus add, correct and forget). Grants come from
  ``memos-desktop mcp grant`` (kept in the encrypted database) and from ``[mcp.clients]`` in
  config.toml; where both speak of one cube, the wider one counts.
- Every call, allowed or refused, is recorded in the profile's audit log
  (``store/mcp_audit.py``, inside the encrypted database): a call that may change memory
  before it runs and again when it ends, a read once before its result is returned.
- A refusal reads and changes nothing, and never tells the client whether a memory it may not
  see exists (a memory in a cube it has no grant on is "not found" to it; the log says why).
- Results are JSON-ready dicts; the MCP server (``memos_desktop.mcp``) only turns them into
  protocol messages.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from memos_desktop.api.facade import MemosAPI
from memos_desktop.config import MCP_CLIENT_NAME, McpClientSettings
from memos_desktop.errors import (
    AmbiguousError,
    CubeNotFoundError,
    InvalidInputError,
    ItemNotFoundError,
    MemosError,
    NotGrantedError,
)
from memos_desktop.store.mcp_audit import ALL_CUBES, AuditEntry, McpRepo
from memos_desktop.store.profile import DEFAULT_CUBE
from memos_desktop.store.records import (
    Cube,
    MemoryItem,
    MemoryType,
    NewMemory,
    SearchFilters,
    Source,
)

Access = Literal["read", "write"]
_RANK = {"read": 1, "write": 2}

# What each tool (and the core-profile resource) needs on its cube.
TOOLS: dict[str, Access] = {
    "search_memories": "read",
    "get_memory": "read",
    "list_cubes": "read",
    "core_profile": "read",
    "remember": "write",
    "correct_memory": "write",
    "forget_memory": "write",
}
# What an MCP client may add: not raw episodes or summaries (those are the reader's).
ADD_TYPES = ("fact", "preference", "event", "instruction")
MAX_TEXT = 4000  # characters of a memory or a query an MCP client may send
MAX_TOP_K = 50


def check_mcp_client(name: str) -> str:
    if not MCP_CLIENT_NAME.fullmatch(name):
        raise InvalidInputError(
            f"{name!r} is not a client name",
            hint="use 1-64 letters, digits, '.', '_' or '-', e.g. --client claude-desktop",
        )
    return name


@dataclass(frozen=True)
class McpGrant:
    client: str
    cube: str  # the cube's name, or "*" (every cube)
    cube_id: str  # "" for "*" and for a configured name that matches no cube
    access: Access
    source: str  # "grant" (memos-desktop mcp grant) or "config" (config.toml)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _repo(api: MemosAPI) -> McpRepo:
    return McpRepo(api.store.db)


def mcp_grants(
    api: MemosAPI, clients: Mapping[str, McpClientSettings], client: str | None = None
) -> list[McpGrant]:
    """Every grant (of one client, or of all), from the database and from the config."""
    with api.lock:
        cubes = api.list_cubes()
        rows = _repo(api).grants(client)
    by_id = {c.id: c for c in cubes}
    by_name = {c.name: c for c in cubes}
    out: list[McpGrant] = []
    for g in rows:
        access = cast(Access, g.access)
        if g.cube_id == ALL_CUBES:
            out.append(McpGrant(g.client, ALL_CUBES, "", access, "grant"))
            continue
        c = by_id.get(g.cube_id)
        name = c.name if c else f"(deleted cube {g.cube_id[:8]})"
        out.append(McpGrant(g.client, name, c.id if c else "", access, "grant"))
    for name, cfg in sorted(clients.items()):
        if client is not None and name != client:
            continue
        for access, names in (("read", cfg.read), ("write", cfg.write)):
            for n in names:
                found = by_name.get(n) or by_id.get(n)
                cube_id = "" if n == ALL_CUBES or found is None else found.id
                out.append(McpGrant(name, n, cube_id, access, "config"))
    return out


def grant_mcp_client(
    api: MemosAPI, client: str, cubes: Sequence[str], access: Access, *, all_cubes: bool = False
) -> list[McpGrant]:
    """Give ``client`` ``access`` to ``cubes`` (names or ids), or to every cube. A grant on a
    cube it already has replaces the old one (so ``--read`` narrows a write grant)."""
    check_mcp_client(client)
    if access not in _RANK:
        raise InvalidInputError(f"unknown access {access!r}", hint="use read or write")
    if not cubes and not all_cubes:
        raise InvalidInputError(
            "no cube given", hint="name one with --cube NAME (or --all-cubes for every cube)"
        )
    with api.lock:
        targets = [_grantable(api, c).id for c in cubes]
        repo = _repo(api)
        with api.store.unit_of_work():
            for cube_id in [*targets, *([ALL_CUBES] if all_cubes else [])]:
                repo.set_grant(client, cube_id, access)
    return mcp_grants(api, {}, client)


def _grantable(api: MemosAPI, name: str) -> Cube:
    """The cube ``name``; the default cube is made if it is not there yet (a new profile has
    none until its first memory), any other missing name is CubeNotFoundError."""
    try:
        return api.store.cubes.get(name, api.user)
    except CubeNotFoundError:
        if name != DEFAULT_CUBE or api.cube.name != name:
            raise
        return api.cube


def revoke_mcp_client(api: MemosAPI, client: str, cubes: Sequence[str] = ()) -> int:
    """Remove what ``memos-desktop mcp grant`` gave ``client`` on ``cubes`` ("*" for the
    every-cube grant), or all of it. Returns how many grants were removed. Grants written in
    config.toml stay until they are removed from the file."""
    check_mcp_client(client)
    with api.lock:
        ids = tuple(
            ALL_CUBES if c == ALL_CUBES else api.store.cubes.get(c, api.user).id for c in cubes
        )
        return _repo(api).revoke(client, ids)


def mcp_audit_log(
    api: MemosAPI, *, limit: int = 50, client: str | None = None, outcome: str | None = None
) -> list[dict[str, Any]]:
    """The newest audit entries first, each with its cube's name."""
    with api.lock:
        entries = _repo(api).log(limit=limit, client=client, outcome=outcome)
        names = {c.id: c.name for c in api.list_cubes()}
    return [_audit_json(e, names) for e in entries]


def clear_mcp_log(api: MemosAPI, before: float | None = None) -> int:
    """The person's way to shorten the audit log: entries older than ``before`` (a Unix time;
    all when None) are deleted. Returns how many. (SQLite's secure_delete is not on: freed
    pages keep their bytes until reused, encrypted like every page.)"""
    with api.lock:
        return _repo(api).clear(before)


def _audit_json(e: AuditEntry, names: Mapping[str, str]) -> dict[str, Any]:
    d = e.to_json()
    d["cube"] = names.get(e.cube_id, e.cube_id[:8])
    return d


def _iso(t: float | None) -> str | None:
    return None if t is None else dt.datetime.fromtimestamp(t).isoformat(timespec="seconds")


def _item_json(item: MemoryItem, cube: Cube) -> dict[str, Any]:
    return {
        "id": item.id,
        "text": item.text,
        "type": item.type,
        "status": item.status,
        "tags": list(item.tags),
        "pinned": item.pinned,
        "cube": cube.name,
        "created_at": _iso(item.created_at),
        "updated_at": _iso(item.updated_at),
    }


def _text(value: str, what: str) -> str:
    if not value.strip():
        raise InvalidInputError(f"{what} is empty", hint=f"give the {what}")
    if len(value) > MAX_TEXT:
        raise InvalidInputError(
            f"{what} is {len(value)} characters long", hint=f"keep it under {MAX_TEXT}"
        )
    return value


def _loggable(args: dict[str, Any]) -> dict[str, Any]:
    """The arguments as the audit log keeps them: a string longer than any valid input is cut
    (the call is refused anyway), so a huge argument cannot swell the log."""
    out: dict[str, Any] = {}
    for k, v in args.items():
        if isinstance(v, str) and len(v) > MAX_TEXT:
            v = f"{v[:200]}... ({len(v)} characters)"
        elif isinstance(v, list) and len(v) > 50:
            v = [*v[:50], f"... ({len(v)} items)"]
        out[k] = v
    return out


class _Refused(Exception):
    """A refusal: ``error`` is what the client is told, ``detail`` what the audit log says."""

    def __init__(
        self, error: MemosError, detail: str, cube_id: str = "", outcome: str = "refused"
    ) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail
        self.cube_id = cube_id
        self.outcome = outcome  # "error" when there is nothing to refuse (no such memory)


Work = Callable[[Cube, MemoryItem | None], tuple[Any, str]]


class McpService:
    """The memory as one MCP client may use it: each method is one tool, checked against the
    client's grants and recorded in the audit log."""

    def __init__(
        self,
        api: MemosAPI,
        client: str,
        clients: Mapping[str, McpClientSettings],
        *,
        transport: str = "stdio",
    ) -> None:
        self.api = api
        self.client = check_mcp_client(client)
        self.transport = transport
        self._clients = clients
        self._repo = McpRepo(api.store.db)

    # --- grants ---------------------------------------------------------------------------------

    def grants(self) -> list[McpGrant]:
        return mcp_grants(self.api, self._clients, self.client)

    def access(self, cube: Cube, grants: Sequence[McpGrant] | None = None) -> Access | None:
        best: Access | None = None
        for g in self.grants() if grants is None else grants:
            if (g.cube == ALL_CUBES or g.cube_id == cube.id) and (
                best is None or _RANK[g.access] > _RANK[best]
            ):
                best = g.access
        return best

    def _refusal(self, cube: Cube | None, name: str, need: Access) -> _Refused:
        verb = "read" if need == "read" else "change"
        err = NotGrantedError(
            f"MCP client '{self.client}' may not {verb} memories in cube '{name}'",
            hint=f"the person can allow it: memos-desktop mcp grant {self.client} "
            f"--cube {name} --{need}",
        )
        return _Refused(err, f"no {need} grant on cube '{name}'", cube.id if cube else "")

    def _cube(self, ref: str | None, need: Access, grants: Sequence[McpGrant]) -> Cube:
        """The cube a call names (default: the one cube the client is granted, else the
        profile's current cube), if the client may use it for ``need``."""
        if ref is None:
            named = {g.cube_id for g in grants if g.cube_id}
            if len(named) == 1:
                cube = self.api.store.cubes.get(named.pop())
            elif self.api.list_cubes() or any(g.cube == ALL_CUBES for g in grants):
                cube = self.api.cube  # made on first use, as for the CLI
            else:  # no cube yet, and none granted: refuse without making one
                raise self._refusal(None, DEFAULT_CUBE, need)
        else:
            try:
                cube = self.api.store.cubes.get(ref, self.api.user)
            except CubeNotFoundError:
                if any(g.cube == ALL_CUBES for g in grants):
                    raise  # it may see every cube: that this one does not exist is no secret
                raise self._refusal(None, ref, need) from None
        have = self.access(cube, grants)
        if have is None or _RANK[have] < _RANK[need]:
            raise self._refusal(cube, cube.name, need)
        return cube

    def _item(self, item_id: str, need: Access, grants: Sequence[McpGrant]) -> MemoryItem:
        missing = ItemNotFoundError(
            f"no memory with id {item_id!r} that client '{self.client}' may see",
            hint="search_memories gives the ids",
        )
        try:
            item = self.api.get(item_id)
        except (ItemNotFoundError, InvalidInputError):  # also: a prefix of several memories
            raise _Refused(missing, "no such memory", outcome="error") from None
        if item.id != item_id:  # full ids only: a prefix must not probe other cubes
            raise _Refused(missing, "not a full memory id", outcome="error")
        cube = self.api.store.cubes.get(item.cube_id)
        have = self.access(cube, grants)
        if have is None:
            raise _Refused(missing, f"memory is in cube '{cube.name}', not granted", cube.id)
        if _RANK[have] < _RANK[need]:
            raise self._refusal(cube, cube.name, need)
        return item

    # --- one recorded call --------------------------------------------------------------------

    def _call(
        self,
        tool: str,
        args: dict[str, Any],
        work: Work,
        *,
        cube: str | None = None,
        item_id: str | None = None,
    ) -> Any:
        """Run one tool call and record it. A call that may change memory is recorded before
        it runs (``started``) and finished after, so a crash between its write and its
        record still leaves a row; a read is recorded once, after it ran and before its
        result is returned (nothing was changed, and nothing leaves without its row)."""
        need = TOOLS[tool]
        args = _loggable(args)
        entry = (
            self._repo.begin(self.client, self.transport, tool, args, item_id=item_id or "")
            if need == "write"
            else None
        )

        def record(outcome: str, detail: str, cube_id: str = "") -> None:
            if entry is None:
                self._repo.begin(
                    self.client,
                    self.transport,
                    tool,
                    args,
                    item_id=item_id or "",
                    cube_id=cube_id,
                    outcome=outcome,
                    detail=detail,
                )
            else:
                self._repo.finish(entry, outcome, detail, cube_id=cube_id)

        target: Cube | None = None
        try:
            with self.api.lock:
                grants = self.grants()
                item = self._item(item_id, need, grants) if item_id is not None else None
                if item is not None:
                    target = self.api.store.cubes.get(item.cube_id)
                else:
                    target = self._cube(cube, need, grants)
            result, detail = work(target, item)
        except _Refused as r:
            record(r.outcome, r.detail, r.cube_id)
            raise r.error from None
        except MemosError as exc:
            record("error", f"{type(exc).__name__}: {exc.message}", target.id if target else "")
            raise
        except Exception as exc:
            record("error", type(exc).__name__)
            raise
        record("ok", detail, target.id)
        return result

    # --- the tools ------------------------------------------------------------------------------

    def search(self, query: str, cube: str | None = None, top_k: int = 10) -> dict[str, Any]:
        args = {"query": query, "cube": cube, "top_k": top_k}

        def work(c: Cube, _: MemoryItem | None) -> tuple[Any, str]:
            _text(query, "search query")
            if not 1 <= top_k <= MAX_TOP_K:
                raise InvalidInputError(
                    f"top_k {top_k} is out of range", hint=f"use 1 to {MAX_TOP_K}"
                )
            res = self.api.search(query, top_k=top_k, cube=c.id)
            hits = [{**_item_json(h.item, c), "score": round(h.score, 4)} for h in res.hits]
            return {"cube": c.name, "mode": res.mode, "hits": hits}, f"{len(hits)} hit(s)"

        return cast(dict[str, Any], self._call("search_memories", args, work, cube=cube))

    def remember(
        self,
        text: str,
        cube: str | None = None,
        type: str = "fact",
        tags: Sequence[str] = (),
    ) -> dict[str, Any]:
        args = {"text": text, "cube": cube, "type": type, "tags": list(tags)}

        def work(c: Cube, _: MemoryItem | None) -> tuple[Any, str]:
            _text(text, "memory text")
            if type not in ADD_TYPES:
                raise InvalidInputError(
                    f"unknown memory type {type!r}", hint=f"use one of {', '.join(ADD_TYPES)}"
                )
            new = NewMemory(
                text=text,
                type=cast(MemoryType, type),
                tags=tuple(t.strip() for t in tags if t.strip()),
                source="mcp",
                sources=(Source(kind="mcp", ref=self.client),),
            )
            res = self.api.add(new, cube=c.id)[0]
            what = "created" if res.created else "already remembered"
            return (
                {"created": res.created, "memory": _item_json(res.item, c)},
                f"{what} {res.item.id}",
            )

        return cast(dict[str, Any], self._call("remember", args, work, cube=cube))

    def correct(
        self,
        text: str,
        cube: str | None = None,
        target: str | None = None,
        replace_nothing: bool = False,
    ) -> dict[str, Any]:
        args = {"text": text, "cube": cube, "target": target, "replace_nothing": replace_nothing}

        def work(c: Cube, _: MemoryItem | None) -> tuple[Any, str]:
            _text(text, "correction")
            if target is not None:
                try:
                    t = self.api.get(target)
                except (ItemNotFoundError, InvalidInputError):
                    t = None
                if t is None or t.id != target or t.cube_id != c.id:
                    raise ItemNotFoundError(
                        f"no memory with id {target!r} in cube '{c.name}'",
                        hint="search_memories gives the ids",
                    )
            try:
                new, old = self.api.correct(
                    text, cube=c.id, target=target, replace_nothing=replace_nothing
                )
            except AmbiguousError as exc:
                found = [{"id": i, "text": t} for i, t in exc.candidates]
                result = {
                    "ambiguous": True,
                    "candidates": found,
                    "hint": "nothing changed: call again with target (an id) or "
                    "replace_nothing=true",
                }
                return result, f"ambiguous: {len(found)} candidates, nothing changed"
            replaced = _item_json(old, c) if old is not None else None
            detail = f"created {new.id}" + (f", superseded {old.id}" if old else "")
            return {"memory": _item_json(new, c), "replaced": replaced}, detail

        return cast(dict[str, Any], self._call("correct_memory", args, work, cube=cube))

    def forget(self, item_id: str, reason: str = "") -> dict[str, Any]:
        args = {"id": item_id, "reason": reason}

        def work(c: Cube, item: MemoryItem | None) -> tuple[Any, str]:
            assert item is not None
            done = self.api.forget(item.id, reason or f"forgotten by MCP client {self.client}")
            return {"forgotten": _item_json(done, c)}, f"forgot {item.id}"

        return cast(dict[str, Any], self._call("forget_memory", args, work, item_id=item_id))

    def get(self, item_id: str, history: bool = True) -> dict[str, Any]:
        args = {"id": item_id, "history": history}

        def work(c: Cube, item: MemoryItem | None) -> tuple[Any, str]:
            assert item is not None
            out: dict[str, Any] = {"memory": _item_json(item, c)}
            if history:
                out["history"] = [
                    {
                        "version": v.version,
                        "text": v.text,
                        "status": v.status,
                        "change": v.change,
                        "reason": v.reason,
                        "changed_at": _iso(v.changed_at),
                    }
                    for v in self.api.history(item.id)
                ]
            return out, f"read {item.id}"

        return cast(dict[str, Any], self._call("get_memory", args, work, item_id=item_id))

    def list_cubes(self) -> dict[str, Any]:
        with self.api.lock:
            grants = self.grants()
            rows = [(c, self.access(c, grants)) for c in self.api.list_cubes()]
            cubes = [
                {"name": c.name, "id": c.id, "access": a, "memories": self.api.count(cube=c.id)}
                for c, a in rows
                if a is not None
            ]
        if not cubes:
            self._repo.begin(
                self.client,
                self.transport,
                "list_cubes",
                {},
                outcome="refused",
                detail="no grant on any cube",
            )
            raise NotGrantedError(
                f"MCP client '{self.client}' has no grant on any cube",
                hint=f"the person can give one: memos-desktop mcp grant {self.client} "
                f"--cube {DEFAULT_CUBE} --read",
            )
        self._repo.begin(
            self.client,
            self.transport,
            "list_cubes",
            {},
            outcome="ok",
            detail=f"{len(cubes)} cube(s)",
        )
        return {"client": self.client, "cubes": cubes}

    def core_profile(self, cube: str | None = None) -> str:
        """The person's core profile in a cube, as Markdown: pinned memories, what is known
        about them (the profile layer), their preferences and instructions."""

        def work(c: Cube, _: MemoryItem | None) -> tuple[Any, str]:
            seen: set[str] = set()
            sections: list[tuple[str, list[MemoryItem]]] = []
            for title, f in (
                ("Pinned", SearchFilters(pinned=True)),
                ("About the person", SearchFilters(layers=("user",))),
                ("Preferences", SearchFilters(types=("preference",))),
                ("Instructions", SearchFilters(types=("instruction",))),
            ):
                items = [i for i in self.api.list(f, limit=50, cube=c.id) if i.id not in seen]
                seen.update(i.id for i in items)
                if items:
                    sections.append((title, items))
            lines = [f"# Core profile (cube '{c.name}')", ""]
            for title, items in sections:
                lines += [f"## {title}", *[f"- {i.text}" for i in items], ""]
            if not sections:
                lines.append("(nothing pinned, no preferences or profile facts yet)")
            return "\n".join(lines).rstrip() + "\n", f"{len(seen)} memory(ies)"

        return cast(str, self._call("core_profile", {"cube": cube}, work, cube=cube))

"""Users (profiles hold one or more users) and their cubes.

Every write is logged in the change log in its own transaction; a cube delete logs a tombstone
for each memory and version it removes and an update for each conversation and adapter that
loses its cube, then the cube's own tombstone (see ``store/changelog.py``).
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from memos_desktop.errors import CubeNotFoundError, InvalidInputError, NotFoundError
from memos_desktop.store.changelog import changelog_for
from memos_desktop.store.db import Database
from memos_desktop.store.migrations import ensure_vec_table, vec_table
from memos_desktop.store.records import Cube, User

_NAME = re.compile(r"^[\w][\w .\-]{0,63}$", re.UNICODE)
_CUBE_COLS = "id, name, owner_id, description, embed_model, embed_dim, created_at, updated_at"


def _check_name(kind: str, name: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise InvalidInputError(
            f"invalid {kind} name {name!r}",
            hint="use 1-64 letters, digits, spaces, '.', '-' or '_', "
            "starting with a letter or digit",
        )
    return name


def _cube(r: Any) -> Cube:
    return Cube(*r)


class UserRepo:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.changes = changelog_for(db)

    def create(self, name: str, display_name: str = "") -> User:
        name = _check_name("user", name)
        if self.db.scalar("SELECT count(*) FROM users WHERE name = ?", (name,)):
            raise InvalidInputError(f"a user named {name!r} already exists")
        u = User(
            id=uuid.uuid4().hex,
            name=name,
            display_name=display_name or name,
            created_at=time.time(),
        )
        with self.db.write() as c:
            c.execute(
                "INSERT INTO users (id, name, display_name, created_at) VALUES (?, ?, ?, ?)",
                (u.id, u.name, u.display_name, u.created_at),
            )
            self.changes.log(c, "user", u.id, "create", ("*",))
        return u

    def get(self, name_or_id: str) -> User:
        r = self.db.query_one(
            "SELECT id, name, display_name, created_at FROM users WHERE id = ? OR name = ?",
            (name_or_id, name_or_id),
        )
        if r is None:
            raise NotFoundError(f"no user {name_or_id!r}", hint="`memos-desktop users` lists them")
        return User(*r)

    def list(self) -> list[User]:
        return [
            User(*r)
            for r in self.db.query(
                "SELECT id, name, display_name, created_at FROM users ORDER BY created_at"
            )
        ]


class CubeRepo:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.changes = changelog_for(db)

    def create(
        self, owner: User, name: str, *, embed_model: str, embed_dim: int, description: str = ""
    ) -> Cube:
        name = _check_name("cube", name)
        if embed_dim <= 0:
            raise InvalidInputError("embedding dimension must be positive")
        if self.db.scalar(
            "SELECT count(*) FROM cubes WHERE owner_id = ? AND name = ?", (owner.id, name)
        ):
            raise InvalidInputError(
                f"{owner.name} already has a cube named {name!r}", hint="pick another name"
            )
        now = time.time()
        cube = Cube(uuid.uuid4().hex, name, owner.id, description, embed_model, embed_dim, now, now)
        with self.db.write() as c:
            c.execute(
                f"INSERT INTO cubes ({_CUBE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    cube.id,
                    cube.name,
                    cube.owner_id,
                    cube.description,
                    cube.embed_model,
                    cube.embed_dim,
                    cube.created_at,
                    cube.updated_at,
                ),
            )
            ensure_vec_table(c, embed_dim)
            self.changes.log(c, "cube", cube.id, "create", ("*",))
        return cube

    def get(self, name_or_id: str, owner: User | None = None) -> Cube:
        if owner is not None:
            r = self.db.query_one(
                f"SELECT {_CUBE_COLS} FROM cubes WHERE owner_id = ? AND (id = ? OR name = ?)",
                (owner.id, name_or_id, name_or_id),
            )
        else:
            r = self.db.query_one(
                f"SELECT {_CUBE_COLS} FROM cubes WHERE id = ? OR name = ? ORDER BY created_at",
                (name_or_id, name_or_id),
            )
        if r is None:
            raise CubeNotFoundError(
                f"no cube {name_or_id!r}", hint="`memos-desktop cubes` lists the cubes"
            )
        return _cube(r)

    def list(self, owner: User | None = None) -> list[Cube]:
        if owner is None:
            rows = self.db.query(f"SELECT {_CUBE_COLS} FROM cubes ORDER BY created_at")
        else:
            rows = self.db.query(
                f"SELECT {_CUBE_COLS} FROM cubes WHERE owner_id = ? ORDER BY created_at",
                (owner.id,),
            )
        return [_cube(r) for r in rows]

    def rename(self, cube: Cube, new_name: str) -> Cube:
        new_name = _check_name("cube", new_name)
        if self.db.scalar(
            "SELECT count(*) FROM cubes WHERE owner_id = ? AND name = ? AND id != ?",
            (cube.owner_id, new_name, cube.id),
        ):
            raise InvalidInputError(f"a cube named {new_name!r} already exists")
        now = time.time()
        with self.db.write() as c:
            c.execute(
                "UPDATE cubes SET name = ?, updated_at = ? WHERE id = ?", (new_name, now, cube.id)
            )
            self.changes.log(c, "cube", cube.id, "update", ("name",))
        return self.get(cube.id)

    def delete(self, cube: Cube) -> int:
        """Delete a cube and every memory in it (hard). Returns the number of items removed.

        Logged explicitly: a purge tombstone per memory and per version, an update of
        ``cube_id`` for each conversation and adapter that pointed at it (they keep existing,
        with no cube), then the cube's tombstone."""
        with self.db.write() as c:

            def ids(sql: str) -> list[str]:
                return [str(r[0]) for r in c.execute(sql, (cube.id,))]

            items = ids("SELECT id FROM memory_items WHERE cube_id = ?")
            versions = ids(
                "SELECT v.id FROM memory_versions v JOIN memory_items m ON m.id = v.item_id "
                "WHERE m.cube_id = ?"
            )
            convs = ids("SELECT id FROM conversations WHERE cube_id = ?")
            adapters = ids("SELECT id FROM adapters WHERE cube_id = ?")
            table = vec_table(cube.embed_dim)
            c.execute(
                f"DELETE FROM {table} WHERE rowid IN "
                "(SELECT rowid FROM memory_items WHERE cube_id = ?)",
                (cube.id,),
            )
            c.execute(
                "DELETE FROM memory_versions WHERE item_id IN "
                "(SELECT id FROM memory_items WHERE cube_id = ?)",
                (cube.id,),
            )
            c.execute("DELETE FROM memory_items WHERE cube_id = ?", (cube.id,))
            # conversations.cube_id and adapters.cube_id are ON DELETE SET NULL
            c.execute("DELETE FROM cubes WHERE id = ?", (cube.id,))
            self.changes.log_many(c, "memory_version", versions, "purge")
            self.changes.log_many(c, "memory", items, "purge")
            self.changes.log_many(c, "conversation", convs, "update", ("cube_id",))
            self.changes.log_many(c, "adapter", adapters, "update", ("cube_id",))
            self.changes.log(c, "cube", cube.id, "delete")
        self.db.checkpoint()
        return len(items)

    def stats(self, cube: Cube) -> dict[str, int]:
        rows = self.db.query(
            "SELECT status, count(*) FROM memory_items WHERE cube_id = ? GROUP BY status",
            (cube.id,),
        )
        return {str(s): int(n) for s, n in rows}

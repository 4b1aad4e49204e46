"""Folder sync: the policy. What to write, what to read, when to compact.

Each device writes only under ``FOLDER/memos-sync/devices/<its id>/``: its pairing offer, the
sync key granted to each peer, and numbered changeset (``cs-N.mcs``) and snapshot
(``snap-N.mcs``) files. Files are immutable once renamed into place; a device deletes only its
own files, and only those a newer snapshot of its own includes. The live database is never
in the folder.

A sync (:meth:`FolderSync.sync_now`), holding this profile's sync lock:
1. takes the sync key a paired device granted, and grants its own to every peer;
2. exports its writes since the last export as one changeset (the first export, and a
   compaction, write a snapshot: every memory's full state);
3. applies every peer's file it has not applied: a peer's snapshot first when that peer's
   changesets it would need are gone (compacted) or many, then the changesets after it; each
   file in one transaction with its record of being applied, so a crash at any point leaves
   the store at a file boundary and the next sync carries on;
4. compacts (a snapshot, then its older files deleted) after ``compact_every`` files or after
   a purge, so a purged text leaves this device's files too.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memos_desktop.errors import SyncError
from memos_desktop.store import sync_state as st
from memos_desktop.store.db import Database
from memos_desktop.store.sync_merge import apply_entries
from memos_desktop.sync import pairing
from memos_desktop.sync.changeset import decode, encode, file_name, key_id, parse_name, write_atomic
from memos_desktop.sync.identity import DeviceIdentity, PublicIdentity

log = logging.getLogger(__name__)

COMPACT_EVERY = 64
SNAPSHOT_WHEN_BEHIND = 64


@dataclass
class SyncReport:
    folder: str
    written: list[str] = field(default_factory=list)
    exported: int = 0  # entries written
    applied: int = 0  # peer files applied
    changed: int = 0  # memories changed here
    compacted: bool = False
    refused: list[str] = field(default_factory=list)
    waiting: str = ""  # why nothing could be exchanged, if so

    def summary(self) -> str:
        if self.waiting:
            return f"Sync waits: {self.waiting}"
        parts = [
            f"sent {self.exported} change(s) in {len(self.written)} file(s)",
            f"applied {self.applied} file(s), {self.changed} memory change(s)",
        ]
        if self.compacted:
            parts.append("history compacted")
        if self.refused:
            parts.append(f"{len(self.refused)} file(s) refused")
        return "Synced: " + "; ".join(parts) + "."


@dataclass(frozen=True)
class Peer:
    device_id: str
    name: str
    paired_at: float
    last_seen: float | None
    applied_upto: int


@dataclass(frozen=True)
class SyncStatus:
    device_id: str
    folder: str | None
    has_key: bool
    peers: list[Peer]
    pending: int
    last_sync: float | None
    last_error: str
    conflicts: list[tuple[str, str, list[str]]]
    fingerprint: str


@dataclass(frozen=True)
class Candidate:
    device_id: str
    name: str
    code: str
    paired: bool


class FolderSync:
    def __init__(
        self,
        db: Database,
        ident: DeviceIdentity,
        lock_dir: Path,
        compact_every: int = COMPACT_EVERY,
    ) -> None:
        self.db = db
        self.ident = ident
        self.me = ident.device_id
        self.lock_path = lock_dir / "sync.lock"
        self.compact_every = compact_every

    # --- settings ------------------------------------------------------------------------

    @property
    def folder(self) -> Path | None:
        v = st.get_config(self.db, "folder")
        return Path(v) if v else None

    def _need_folder(self) -> Path:
        f = self.folder
        if f is None:
            raise SyncError(
                "sync is not set up on this device",
                hint="run `memos-desktop sync setup FOLDER` with a folder your sync tool "
                "(Syncthing, Dropbox, a NAS...) replicates",
            )
        if not f.is_dir():
            raise SyncError(
                f"the sync folder {f} is not there",
                hint="mount or create it, or run `memos-desktop sync setup FOLDER` again",
            )
        return f

    @property
    def sync_key(self) -> bytes | None:
        v = st.get_config(self.db, "sync_key")
        return base64.b64decode(v) if v else None

    def _set(self, **values: str | None) -> None:
        with self.db.write() as c:
            for k, v in values.items():
                st.set_config(c, k, v)

    @property
    def mine(self) -> Path:
        return pairing.devices_dir(self._need_folder()) / self.me

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One sync at a time per profile (the app and the daemon may both try)."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as f:
            try:
                import fcntl

                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            except ImportError:  # pragma: no cover (Windows: one process syncs at a time)
                pass
            yield

    # --- setup and pairing ----------------------------------------------------------------

    def setup(self, folder: Path) -> bool:
        """Use ``folder``; returns True if this device made a new sync key (the first one)."""
        folder = folder.expanduser().resolve()
        if not folder.is_dir():
            raise SyncError(
                f"{folder} is not a folder",
                hint="create it (inside your Syncthing/Dropbox/NAS folder) and run this again",
            )
        profile = self.lock_path.parent.resolve()
        if folder == profile or profile in folder.parents or folder in profile.parents:
            raise SyncError(
                f"{folder} holds this profile's database (or sits inside it): a sync tool "
                "copying the live database corrupts it",
                hint="choose a folder apart from the profile (memos-desktop writes its own "
                "files there, never the database)",
            )
        made = False
        self._set(folder=str(folder))
        if self.sync_key is None and not any(o.key_id for o in pairing.offers(folder, self.me)):
            self._set(sync_key=base64.b64encode(os.urandom(32)).decode("ascii"))
            made = True
        pairing.write_offer(self.ident, folder, self.sync_key)
        return made

    def candidates(self) -> list[Candidate]:
        paired = {p[0] for p in st.peers(self.db)}
        return [
            Candidate(
                o.identity.device_id,
                o.name,
                pairing.code_for(self.ident, o.identity),
                o.identity.device_id in paired,
            )
            for o in pairing.offers(self._need_folder(), self.me)
        ]

    def find(self, device: str) -> pairing.Offer:
        offers = [
            o
            for o in pairing.offers(self._need_folder(), self.me)
            if o.identity.device_id.startswith(device)
        ]
        if len(offers) != 1:
            raise SyncError(
                f"{'no' if not offers else 'more than one'} device in the sync folder matches "
                f"{device!r}",
                hint="`memos-desktop sync pair` lists the devices there; set it up on the other "
                "device first (`memos-desktop sync setup FOLDER`) and let the folder replicate",
            )
        return offers[0]

    def code(self, device: str) -> str:
        return pairing.code_for(self.ident, self.find(device).identity)

    def pair(self, device: str, code: str) -> Candidate:
        """Trust ``device`` once the person confirmed the code both screens show."""
        offer = self.find(device)
        want = pairing.code_for(self.ident, offer.identity)
        if "".join(code.split()) != "".join(want.split()):
            raise SyncError(
                "the code does not match; the devices were not paired",
                hint="both devices must show the same code; if they do not, someone else's key "
                "may be in the folder: do not pair",
            )
        st.add_peer(self.db, offer.identity.device_id, str(offer.identity))
        key = self.sync_key
        if key is not None:
            pairing.write_grant(self.ident, self._need_folder(), offer.identity, key)
            self._set(**{f"granted:{offer.identity.device_id}": key_id(key)})
        return Candidate(offer.identity.device_id, offer.name, want, True)

    def paired(self) -> list[PublicIdentity]:
        return [PublicIdentity.parse(p[1]) for p in st.peers(self.db)]

    # --- one sync --------------------------------------------------------------------------

    def sync_now(self) -> SyncReport:
        folder = self._need_folder()
        report = SyncReport(str(folder))
        with self._locked():
            try:
                self._sync(folder, report)
            except SyncError as exc:
                self._set(last_error=exc.message)
                raise
            self._set(
                last_sync=str(time.time()), last_error="; ".join(report.refused)[:500] or None
            )
        return report

    def _sync(self, folder: Path, report: SyncReport) -> None:
        mine = pairing.devices_dir(folder) / self.me
        mine.mkdir(parents=True, exist_ok=True)
        for tmp in mine.glob(".tmp-*"):  # a write killed midway (ciphertext only)
            tmp.unlink(missing_ok=True)
        peers = self.paired()
        self._take_key(folder, peers, report)
        key = self.sync_key
        if not (mine / pairing.OFFER).is_file():
            pairing.write_offer(self.ident, folder, key)
        if key is None:
            report.waiting = "no sync key yet: pair with a device that has one (`sync pair`)"
            return
        if not peers:
            report.waiting = "no paired device yet (`memos-desktop sync pair`)"
            return
        kid = key_id(key)
        for p in peers:
            if (
                st.get_config(self.db, f"granted:{p.device_id}") != kid
                or not pairing.grant_path(folder, self.me, p.device_id).is_file()
            ):
                pairing.write_grant(self.ident, folder, p, key)
                self._set(**{f"granted:{p.device_id}": kid})
        self._export(mine, key, report)
        for p in peers:
            self._import_peer(folder, p, key, report)
        self._compact_if_due(mine, key, report)

    def _take_key(self, folder: Path, peers: list[PublicIdentity], report: SyncReport) -> None:
        key = self.sync_key
        for p in sorted(peers, key=lambda p: p.device_id):
            try:
                granted = pairing.read_grant(self.ident, folder, p)
            except SyncError as exc:
                report.refused.append(exc.message)
                continue
            if granted is None or granted == key:
                continue
            fresh = (
                st.int_config(self.db, "exported_seq") == 0
                and st.int_config(self.db, "next_seq") == 0
            )
            if key is None or (fresh and p.device_id < self.me):
                self._set(sync_key=base64.b64encode(granted).decode("ascii"))
                pairing.write_offer(self.ident, folder, granted)
                key = granted
                log.info("sync key taken from device %s", p.device_id)

    def _next_seq(self, mine: Path) -> int:
        on_disk = [s for n in os.listdir(mine) if (parsed := parse_name(n)) for s in [parsed[1]]]
        return max([st.int_config(self.db, "next_seq"), *(s + 1 for s in on_disk), 1])

    def _write(
        self,
        mine: Path,
        key: bytes,
        kind: str,
        entries: list[dict[str, Any]],
        covers: dict[str, int],
    ) -> int:
        seq = self._next_seq(mine)
        covers = {**covers, self.me: seq}
        write_atomic(
            mine, file_name(kind, seq), encode(self.ident, key, kind, seq, entries, covers)
        )
        return seq

    def _export(self, mine: Path, key: bytes, report: SyncReport) -> None:
        since = st.int_config(self.db, "exported_seq")
        top, mids, vids = st.local_changes(self.db, self.me, since)
        first = since == 0 and st.int_config(self.db, "next_seq") == 0
        if not first and not mids and not vids:
            return
        with self.db.write() as c:
            st.absorb(c, self.me)
            if first:  # the device's history so far: as one snapshot
                entries = st.build_entries(c, st.all_memory_ids(c), None)
            else:
                entries = st.build_entries(c, mids, vids)
            covers = st.coverage(self.db) if first else {}
        kind = "snapshot" if first else "changeset"
        seq = self._write(mine, key, kind, entries, covers)
        purged = any("purged" in e for e in entries)
        values: dict[str, str | None] = {"exported_seq": str(top), "next_seq": str(seq + 1)}
        if first:
            values["snapshot_seq"] = str(seq)
        if purged:
            values["purge_pending"] = "1"
        self._set(**values)
        report.written.append(file_name(kind, seq))
        report.exported += len(entries)

    def _import_peer(
        self, folder: Path, peer: PublicIdentity, key: bytes, report: SyncReport
    ) -> None:
        pdir = pairing.devices_dir(folder) / peer.device_id
        if not pdir.is_dir():
            return
        files: dict[str, dict[int, str]] = {"changeset": {}, "snapshot": {}}
        for n in os.listdir(pdir):
            parsed = parse_name(n)
            if parsed:
                files[parsed[0]][parsed[1]] = n
        upto = st.applied_upto(self.db, peer.device_id)
        snaps = sorted(files["snapshot"])
        skipped: int | None = None
        if snaps and snaps[-1] > upto and not st.is_applied(self.db, peer.device_id, snaps[-1]):
            s = snaps[-1]
            gap = [
                n
                for n in range(upto + 1, s)
                if n not in files["changeset"] and not st.is_applied(self.db, peer.device_id, n)
            ]
            below = any(n < s for n in files["changeset"])
            if gap or s - upto > SNAPSHOT_WHEN_BEHIND or (upto == 0 and not below):
                self._apply_file(pdir / files["snapshot"][s], peer, key, report)
            else:
                # A compaction of changesets this device has or is about to apply: it adds
                # nothing they do not (what it held unsent goes out in a later changeset).
                skipped = s
        for seq in sorted(files["changeset"]):
            if not st.is_applied(self.db, peer.device_id, seq):
                self._apply_file(pdir / files["changeset"][seq], peer, key, report)
        if skipped is not None and all(
            st.is_applied(self.db, peer.device_id, n) for n in files["changeset"] if n < skipped
        ):
            with self.db.write() as c:
                st.mark_applied(c, peer.device_id, skipped, "snapshot", {})

    def import_file(self, path: Path, peer: PublicIdentity, key: bytes) -> int:
        """Verify, check and merge one file of ``peer``'s folder, recording it as applied, all
        or nothing. Returns how many memories changed; :class:`SyncError` if refused (the
        store is then untouched)."""
        header, entries = decode(path.read_bytes(), peer, key, path.name)

        def mark(c: Any) -> None:
            covers = header.covers if header.kind == "snapshot" else {}
            st.mark_applied(c, peer.device_id, header.seq, header.kind, covers)
            if any("purged" in e for e in entries):
                st.set_config(c, "purge_pending", "1")

        return apply_entries(self.db, self.me, entries, mark)

    def _apply_file(self, path: Path, peer: PublicIdentity, key: bytes, report: SyncReport) -> None:
        try:
            report.changed += self.import_file(path, peer, key)
        except FileNotFoundError:
            return  # compacted away meanwhile: its snapshot covers it next time
        except SyncError as exc:
            report.refused.append(exc.message)
            log.warning("refused %s: %s", path.name, exc.message)
            return
        report.applied += 1

    def _compact_if_due(self, mine: Path, key: bytes, report: SyncReport) -> None:
        last = st.int_config(self.db, "snapshot_seq")
        own = sorted(s for n in os.listdir(mine) if (p := parse_name(n)) for s in [p[1]])
        since = [s for s in own if s > last]
        if len(since) < self.compact_every and not st.get_config(self.db, "purge_pending"):
            return
        self._export(mine, key, report)  # what is unsent goes out first: see _import_peer
        with self.db.write() as c:
            st.absorb(c, self.me)
            top = st.top_seq(c)
            pending = c.execute(
                "SELECT count(*) FROM changes WHERE seq > ? AND device_id = ? AND entity IN "
                "('memory', 'memory_version')",
                (st.int_config(self.db, "exported_seq"), self.me),
            ).fetchall()[0][0]
            entries = st.build_entries(c, st.all_memory_ids(c), None)
            covers = st.coverage(self.db)
        seq = self._write(mine, key, "snapshot", entries, covers)
        values: dict[str, str | None] = {
            "snapshot_seq": str(seq),
            "next_seq": str(seq + 1),
            "purge_pending": None,
        }
        if not pending:
            values["exported_seq"] = str(top)
        self._set(**values)
        for s in own:  # older files of this device: the snapshot includes them
            if s < seq:
                for kind in ("changeset", "snapshot"):
                    (mine / file_name(kind, s)).unlink(missing_ok=True)
        report.compacted = True
        report.written.append(file_name("snapshot", seq))

    # --- status --------------------------------------------------------------------------

    def status(self) -> SyncStatus:
        folder = self.folder
        names: dict[str, str] = {}
        if folder is not None and folder.is_dir():
            names = {o.identity.device_id: o.name for o in pairing.offers(folder, self.me)}
        last = st.get_config(self.db, "last_sync")
        dump = json.dumps(st.state_dump(self.db), sort_keys=True).encode()
        return SyncStatus(
            device_id=self.me,
            folder=str(folder) if folder else None,
            has_key=self.sync_key is not None,
            peers=[
                Peer(d, names.get(d, ""), at, seen, upto)
                for d, _, at, upto, seen in st.peers(self.db)
            ],
            pending=st.pending_count(self.db, self.me),
            last_sync=float(last) if last else None,
            last_error=st.get_config(self.db, "last_error") or "",
            conflicts=st.conflicts(self.db),
            fingerprint=hashlib.sha256(dump).hexdigest()[:12],
        )

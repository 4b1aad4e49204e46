"""Cube files on the facade: export a cube to a ``.memcube`` file, import one, this device's
public identity (what others encrypt cube files to), and the foreground re-embedding runner.

Design rules:
- The policy lives in ``sync/`` (the format, verification, merge); these methods resolve the
  cube, the user and the embedder, and call it, holding the API's lock.
- ``known``: public identities this person trusts, on top of the devices paired for sync
  (always known); a file signed by anyone else is imported and reported as
  ``trust == "unknown"``, or refused with ``require_known``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from memos_desktop.api.base import ApiBase, locked
from memos_desktop.errors import InvalidInputError
from memos_desktop.memory import reembed
from memos_desktop.store import sync_state
from memos_desktop.sync.cube_export import ExportReport, export_cube
from memos_desktop.sync.cube_import import ImportReport, import_cube
from memos_desktop.sync.cubefile import Opening, Sealing, file_mode
from memos_desktop.sync.identity import PublicIdentity, load_identity

ExportProgress = Callable[[int, int], None]
ImportProgress = Callable[[str, int, int], None]


class CubeFilesApi(ApiBase):
    @locked
    def device_identity(self) -> str:
        """This device's public identity (``memos-device:1:...``): give it to whoever should
        be able to send you cube files (``cubes export --to``)."""
        return str(load_identity(self.store.db).public)

    def cube_file_mode(self, path: Path | str) -> str:
        """How a cube file is opened: ``passphrase`` or ``recipients`` (this device's keys)."""
        p = Path(path).expanduser()
        if not p.is_file():
            raise InvalidInputError(f"no cube file at {p}", hint="check the path")
        with open(p, "rb") as fp:
            return file_mode(fp)

    @locked
    def export_cube(
        self,
        cube: str | None,
        path: Path | str,
        *,
        passphrase: str | None = None,
        to: Sequence[str] = (),
        with_states: bool = False,
        with_adapters: bool = True,
        progress: ExportProgress | None = None,
    ) -> ExportReport:
        """Write a cube (default: the current one) to an encrypted, signed cube file, for a
        passphrase or for the given device identities."""
        recipients = tuple(PublicIdentity.parse(t) for t in to)
        sealing = Sealing(passphrase=passphrase, recipients=recipients)
        return export_cube(
            self.store,
            self._cube_for(cube),
            Path(path),
            sealing,
            with_states=with_states,
            with_adapters=with_adapters,
            progress=progress,
        )

    @locked
    def import_cube(
        self,
        path: Path | str,
        *,
        passphrase: str | None = None,
        into: str | None = None,
        name: str | None = None,
        known: Sequence[str | PublicIdentity] = (),
        require_known: bool = False,
        with_states: bool = False,
        progress: ImportProgress | None = None,
    ) -> ImportReport:
        """Verify a cube file completely, then import it in one transaction: as a new cube
        (``name``, default the file's), or merged into the cube ``into``."""
        trusted = [k if isinstance(k, PublicIdentity) else PublicIdentity.parse(k) for k in known]
        # The devices this one is paired with for sync are known signers too.
        trusted += [PublicIdentity.parse(p[1]) for p in sync_state.peers(self.store.db)]
        e = self.embedder
        return import_cube(
            self.store,
            Path(path),
            Opening(passphrase=passphrase),
            owner=self.user,
            embed_model=e.model_id if e else None,
            embed_dim=e.dim if e else None,
            into=self.store.cubes.get(into, self.user) if into else None,
            name=name,
            known=trusted,
            require_known=require_known,
            with_states=with_states,
            progress=progress,
        )

    @locked
    def run_reembed(self, progress: reembed.Progress | None = None) -> reembed.ReembedReport:
        """Run the queued re-embedding jobs now, in this process (the daemon runs them too)."""
        return reembed.run_pending(self.store, self.embedder, progress=progress)

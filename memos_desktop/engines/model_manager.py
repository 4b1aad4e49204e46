"""The model manager: list, pull, use and remove models. The only code that downloads.

Design rules:
- The network is used by :func:`pull` and nothing else, and only when asked. Offline
  (``HF_HUB_OFFLINE`` set, ``local_files_only=True``, or the hub not reachable) fails at once with
  an :class:`OfflineError` that names the fix: never the hub client's long retry loop. The
  reachability probe is one TCP connect with a short timeout, made before any hub call.
- A download is resumable across runs: bytes go to ``<file>.part`` beside the target, and a later
  pull continues it with an HTTP Range request. (huggingface_hub 2.x deletes its partial file when
  a download fails, so only the metadata lookup goes through it: URL, auth headers, redirect,
  size and the LFS sha256; the body is fetched here.)
- Every finished file is checked against a sha256: the catalog's pinned one, else the hub's LFS
  sha256; a mismatch deletes the file. The sha256 is recorded in the model's manifest and checked
  again by :func:`verify`. Free disk space is checked before the first byte.
- ``use`` returns new Settings; the caller saves them (``config.save_settings``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.client
import logging
import os
import re
import shutil
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from memos_desktop.config import Paths, Settings
from memos_desktop.engines import catalog
from memos_desktop.engines.catalog import ModelEntry
from memos_desktop.errors import (
    DiskFullError,
    EngineError,
    InvalidInputError,
    ModelNotFoundError,
    OfflineError,
)

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
PROBE_TIMEOUT_S = 3.0  # the TCP reachability probe
HTTP_TIMEOUT_S = 15.0  # per read of the download body / the metadata request
RETRIES = 3  # in-call resumes after a dropped connection, before giving up (the .part stays)
CHUNK = 1 << 20
DISK_MARGIN = 64 * 1024 * 1024  # keep this much free after a download
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
OFFLINE_HINT = (
    "connect to the network and run the same command again (unset HF_HUB_OFFLINE if it is set), "
    "or copy a .gguf file to this machine and use its path as the model id"
)


class Progress(Protocol):
    def update(self, n: int) -> object: ...

    def close(self) -> object: ...


ProgressFactory = Callable[[int | None, int, str], Progress]


def tqdm_progress(total: int | None, initial: int, desc: str) -> Progress:
    """A progress bar on stderr (stdout is data); honours HF_HUB_DISABLE_PROGRESS_BARS."""
    from huggingface_hub.utils.tqdm import are_progress_bars_disabled, tqdm

    bar: Progress = tqdm(  # type: ignore[no-untyped-call]
        total=total,
        initial=initial,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        disable=are_progress_bars_disabled(),
    )
    return bar


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def no_progress(total: int | None, initial: int, desc: str) -> Progress:
    return _NoProgress()


# --- offline state -------------------------------------------------------------------------


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def offline_reason(env: dict[str, str] | None = None) -> str | None:
    """Why we must not use the network, or None. Read at call time (not import time)."""
    env = dict(os.environ) if env is None else env
    if _truthy(env.get("HF_HUB_OFFLINE")):
        return "offline mode is on (HF_HUB_OFFLINE is set)"
    return None


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", DEFAULT_ENDPOINT).rstrip("/")


def probe(url: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """One TCP connect to the host (or the HTTPS proxy) ``url`` would use; OfflineError if not.

    This is what keeps an unplugged laptop from waiting on the hub client's retries.
    """
    u = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(u.scheme or "https")
    target = urllib.parse.urlsplit(proxy) if proxy else u
    host = target.hostname or ""
    port = target.port or (443 if target.scheme == "https" else 80)
    if proxy and urllib.request.proxy_bypass(u.hostname or ""):
        host, port = u.hostname or "", u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        via = f" through the proxy {host}:{port}" if proxy else ""
        raise OfflineError(f"cannot reach {u.hostname}{via} ({exc})", hint=OFFLINE_HINT) from exc


# --- listing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    entry: ModelEntry
    installed: bool
    path: Path | None
    size_on_disk: int | None
    active: bool
    sha256: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.entry.to_json(),
            "installed": self.installed,
            "path": str(self.path) if self.path else None,
            "size_on_disk": self.size_on_disk,
            "active": self.active,
            "installed_sha256": self.sha256,
        }


def list_models(paths: Paths, settings: Settings) -> list[ModelInfo]:
    """Every catalog model, installed or not, with what it needs. Never touches the network."""
    active = {settings.models.chat, settings.models.embedding}
    out: list[ModelInfo] = []
    for entry in catalog.CATALOG.values():
        path = catalog.installed_path(paths, entry.id)
        manifest = None if entry.builtin else catalog.read_manifest(paths, entry.id)
        out.append(
            ModelInfo(
                entry=entry,
                installed=path is not None or entry.builtin,
                path=path,
                size_on_disk=path.stat().st_size if path else None,
                active=entry.id in active,
                sha256=(manifest or {}).get("sha256") or (entry.sha256 if path else None),
            )
        )
    return out


# --- pulling -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteFile:
    url: str  # where the bytes are (after the hub's redirect)
    size: int | None
    sha256: str | None  # the hub's LFS sha256, when it gives one
    commit: str | None
    headers: dict[str, str]


class HubClient:
    """Metadata through huggingface_hub; bytes by a resumable HTTP GET."""

    def __init__(self, endpoint: str | None = None) -> None:
        self.endpoint = (endpoint or hub_endpoint()).rstrip("/")

    def file_url(self, entry: ModelEntry) -> str:
        from huggingface_hub import hf_hub_url

        url: str = hf_hub_url(
            entry.repo_id, entry.filename, revision=entry.revision, endpoint=self.endpoint
        )
        return url

    def metadata(self, entry: ModelEntry) -> RemoteFile:
        from huggingface_hub import get_hf_file_metadata
        from huggingface_hub.errors import (
            EntryNotFoundError,
            GatedRepoError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
        from huggingface_hub.utils._headers import build_hf_headers

        url = self.file_url(entry)
        headers: dict[str, str] = dict(build_hf_headers())
        try:
            meta = get_hf_file_metadata(url, timeout=HTTP_TIMEOUT_S, endpoint=self.endpoint)
        except GatedRepoError as exc:
            raise EngineError(
                f"{entry.repo_id} is gated on the hub: accept its licence there first",
                hint="log in with `hf auth login` (or set HF_TOKEN) after accepting it",
            ) from exc
        except (RepositoryNotFoundError, EntryNotFoundError, RevisionNotFoundError) as exc:
            raise ModelNotFoundError(
                f"{entry.repo_id}/{entry.filename} was not found on the hub",
                hint="the catalog entry may be out of date; report it",
            ) from exc
        except OSError as exc:  # httpx/requests connection errors derive from OSError or wrap it
            raise OfflineError(f"the hub did not answer ({exc})", hint=OFFLINE_HINT) from exc
        except Exception as exc:
            if _looks_like_network_error(exc):
                raise OfflineError(f"the hub did not answer ({exc})", hint=OFFLINE_HINT) from exc
            raise
        etag = (meta.etag or "").lower()
        return RemoteFile(
            url=meta.location or url,
            size=meta.size,
            sha256=etag if _HEX64.match(etag) else None,
            commit=meta.commit_hash,
            headers=headers,
        )

    def fetch(self, remote: RemoteFile, part: Path, progress: ProgressFactory, desc: str) -> None:
        """Append the missing bytes of ``remote`` to ``part``; resumes where ``part`` ends."""
        headers = dict(remote.headers)
        if (
            urllib.parse.urlsplit(remote.url).hostname
            != urllib.parse.urlsplit(self.endpoint).hostname
        ):
            # The hub redirects file bodies to a CDN: never send the user's token there.
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        download(remote.url, part, size=remote.size, headers=headers, progress=progress, desc=desc)


def _looks_like_network_error(exc: BaseException) -> bool:
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(
        names
        & {
            "ConnectError",
            "ConnectTimeout",
            "TimeoutException",
            "NetworkError",
            "ConnectionError",
            "RemoteProtocolError",
            "ReadTimeout",
        }
    )


def download(
    url: str,
    part: Path,
    *,
    size: int | None,
    headers: dict[str, str],
    progress: ProgressFactory,
    desc: str,
) -> None:
    """Resumable GET of ``url`` into ``part``: retries a dropped connection from where it broke
    (``RETRIES`` times), and leaves ``part`` for a later call when it gives up."""
    bar: Progress | None = None
    failures = 0
    try:
        while True:
            have = part.stat().st_size if part.exists() else 0
            if size is not None and have == size:
                return
            if size is not None and have > size:  # not ours, or the file changed: start over
                part.unlink()
                have = 0
            req = urllib.request.Request(url, headers=dict(headers))
            if have:
                req.add_header("Range", f"bytes={have}-")
            try:
                with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as resp:
                    status = resp.status
                    if have and status == 200:  # the server ignored Range: take it from the top
                        have = 0
                    if bar is None:
                        bar = progress(size, have, desc)
                    with open(part, "r+b" if have else "wb") as f:
                        f.seek(have)
                        f.truncate()
                        while chunk := resp.read(CHUNK):
                            f.write(chunk)
                            bar.update(len(chunk))
                            failures = 0  # progress was made: a later drop gets fresh retries
                got = part.stat().st_size
                if size is None or got == size:
                    return
                raise ConnectionResetError(f"connection closed at {got} of {size} bytes")
            except urllib.error.HTTPError as exc:
                if exc.code == 416 and size is not None and have == size:
                    return
                raise EngineError(
                    f"download of {desc} failed: HTTP {exc.code}",
                    hint="run the same command again later",
                ) from exc
            except (OSError, http.client.HTTPException) as exc:  # resets, timeouts, short reads
                failures += 1
                if failures > RETRIES:
                    got = part.stat().st_size if part.exists() else 0
                    raise OfflineError(
                        f"download of {desc} broke off at {got} bytes ({exc})",
                        hint="run the same command again: it resumes where it stopped",
                    ) from exc
                log.warning("download of %s interrupted (%s); resuming", desc, exc)
                time.sleep(min(0.2 * failures, 1.0))
    finally:
        if bar is not None:
            bar.close()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _free_space(directory: Path) -> int:
    d = directory
    while not d.exists() and d != d.parent:
        d = d.parent
    return shutil.disk_usage(d).free


def pull(
    paths: Paths,
    model_id: str,
    *,
    entry: ModelEntry | None = None,
    client: HubClient | None = None,
    progress: ProgressFactory = tqdm_progress,
    local_files_only: bool = False,
    force: bool = False,
) -> Path:
    """Make ``model_id`` available locally and return its file. Downloads only hub models.

    ``entry`` overrides the catalog entry (tests, or a model outside the catalog).
    """
    entry = entry or catalog.get_entry(model_id)
    if entry.builtin:
        # Nothing to download: built-ins come from installed packages; build the file now.
        from memos_desktop.engines import loader  # numpy: not before first use

        return loader.resolve(paths, entry.id).path
    installed = catalog.installed_path(paths, entry.id)
    if installed is not None and not force:
        return installed
    if local_files_only:
        raise ModelNotFoundError(
            f"model '{entry.id}' is not downloaded and downloads are off (local_files_only)",
            hint=f"run `memos-desktop models pull {entry.id}` with the network on",
        )
    reason = offline_reason()
    if reason:
        raise OfflineError(f"cannot download '{entry.id}': {reason}", hint=OFFLINE_HINT)
    client = client or HubClient()
    probe(client.endpoint)
    remote = client.metadata(entry)
    expected = entry.sha256
    if expected and remote.sha256 and remote.sha256 != expected:
        raise InvalidInputError(
            f"the hub's {entry.filename} (sha256 {remote.sha256[:12]}...) is not the file the "
            f"catalog pins ({expected[:12]}...)",
            hint="the file was changed upstream; report it so the catalog can be updated",
        )
    expected = expected or remote.sha256
    dest_dir = catalog.model_dir(paths, entry.id)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / entry.filename
    part = dest_dir / (entry.filename + ".part")
    have = part.stat().st_size if part.exists() else 0
    need = (remote.size or entry.size_bytes) - have
    free = _free_space(dest_dir)
    if need + DISK_MARGIN > free:
        raise DiskFullError(
            f"not enough free disk space for '{entry.id}': it needs "
            f"{catalog.human_size(need)} more, {catalog.human_size(free)} is free in {dest_dir}",
            hint="free some space, or move all state elsewhere with MEMOS_DESKTOP_HOME",
        )
    client.fetch(remote, part, progress, entry.filename)
    digest = sha256_file(part)
    if expected and digest != expected:
        part.unlink(missing_ok=True)
        raise InvalidInputError(
            f"the downloaded {entry.filename} is damaged or not the expected file "
            f"(sha256 {digest[:12]}..., expected {expected[:12]}...); it was deleted",
            hint=f"run `memos-desktop models pull {entry.id}` again",
        )
    os.replace(part, target)
    catalog.write_manifest(
        paths,
        entry.id,
        {
            "id": entry.id,
            "kind": entry.kind,
            "repo_id": entry.repo_id,
            "filename": entry.filename,
            "revision": entry.revision,
            "commit": remote.commit,
            "sha256": digest,
            "sha256_source": "catalog" if entry.sha256 else "hub" if remote.sha256 else "download",
            "size": target.stat().st_size,
            "pulled_at": time.time(),
        },
    )
    log.info("pulled %s (%s bytes, sha256 %s)", entry.id, target.stat().st_size, digest)
    return target


def verify(paths: Paths, model_id: str) -> bool:
    """Re-hash an installed hub model and compare with the sha256 recorded when it was pulled."""
    manifest = catalog.read_manifest(paths, model_id)
    if manifest is None:
        raise ModelNotFoundError(
            f"model '{model_id}' is not installed",
            hint=f"run `memos-desktop models pull {model_id}`",
        )
    path = catalog.model_dir(paths, model_id) / str(manifest["filename"])
    return sha256_file(path) == manifest.get("sha256")


# --- use and rm ----------------------------------------------------------------------------


def use(paths: Paths, settings: Settings, model_id: str) -> Settings:
    """Settings with ``model_id`` as the active chat or embedding model (the caller saves them).

    The model must be available locally (built-ins always are); a path to a .gguf file needs
    the kind to be known, so only catalog ids choose the kind by themselves.
    """
    from memos_desktop.engines import loader  # numpy: not before first use

    resolved = loader.resolve(paths, model_id)  # raises with the fix when not installed
    kind = resolved.kind
    if kind is None:
        raise InvalidInputError(
            f"cannot tell whether {model_id} is a chat or an embedding model",
            hint="use `models use --kind chat PATH` or `--kind embedding`",
        )
    return use_kind(settings, kind, model_id)


def use_kind(settings: Settings, kind: str, model_id: str) -> Settings:
    models = dataclasses.replace(settings.models, **{kind: model_id})
    return dataclasses.replace(settings, models=models)


def remove(paths: Paths, settings: Settings, model_id: str, *, force: bool = False) -> list[Path]:
    """Delete a model's files; returns what was deleted. Built-ins: only their derived file in
    the cache (rebuilt on next use). The active model is kept unless ``force``."""
    entry = catalog.get_entry(model_id)
    if (
        not force
        and model_id in (settings.models.chat, settings.models.embedding)
        and not entry.builtin
    ):
        raise InvalidInputError(
            f"'{model_id}' is the active {entry.kind} model",
            hint="choose another with `memos-desktop models use`, or add --force",
        )
    removed: list[Path] = []
    if entry.builtin:
        p = catalog.builtin_path(paths, entry)
        for f in (p, p.with_name(p.name + ".json")):
            if f.exists():
                f.unlink()
                removed.append(f)
        return removed
    d = catalog.model_dir(paths, model_id)
    if d.exists():
        removed.append(d)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(d)
    return removed

"""One exception hierarchy for the whole product.

Design rule: every error says what happened *and* what the person can do about it, and carries
the process exit code the CLI uses for it. Front ends never show a traceback for these; they
print ``str(err)`` (and ``err.hint``) and exit with ``err.exit_code``.

Exit codes (documented in README.md, "Exit codes"):

====  ===========================================================
 0    success
 1    unexpected internal error (a bug: please report it)
 2    usage error (bad arguments; click's own code)
 3    configuration error (invalid settings file)
 4    not found (profile, cube, memory item, model)
 5    authentication error (wrong passphrase or key, locked keyring)
 6    storage error (damaged, missing, emptied or rolled-back database, damaged key file,
      disk full)
 7    busy (another instance holds the profile)
 8    model/engine error (model missing, offline with no model)
 9    invalid input (bad value, input that is not text, tampered file)
10    a choice is needed (a correction could mean several memories)
====  ===========================================================
"""

from __future__ import annotations


class MemosError(Exception):
    """Base of every error memos-desktop raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  -> {self.hint}"
        return self.message


class ConfigError(MemosError):
    """The settings file is invalid (names the file and the key)."""

    exit_code = 3


class NotFoundError(MemosError):
    exit_code = 4


class ProfileNotFoundError(NotFoundError):
    pass


class ItemNotFoundError(NotFoundError):
    pass


class CubeNotFoundError(NotFoundError):
    pass


class AuthError(MemosError):
    """The key could not be obtained or is wrong."""

    exit_code = 5


class WrongPassphraseError(AuthError):
    pass


class WrongKeyError(AuthError):
    pass


class KeyringUnavailableError(AuthError):
    pass


class PassphraseRequiredError(AuthError):
    pass


class NotGrantedError(AuthError):
    """An MCP client asked for something its grant does not cover (``memos-desktop mcp
    grant`` gives one); nothing was read or changed."""


class StoreError(MemosError):
    exit_code = 6


class CorruptDatabaseError(StoreError):
    pass


class DiskFullError(StoreError):
    pass


class DataLossError(StoreError):
    """The database is missing, empty, or holds less than this profile is known to have written
    (its WAL was lost or damaged, an older copy was put back). Refused, never started over."""


class WritesStoppedError(CorruptDatabaseError):
    """A damaged page was found: writes stay stopped until a backup is restored (or the loss
    is accepted), so nothing more is written into a damaged database."""


class KeyFileError(StoreError):
    """The profile's key file is damaged, changed or out of bounds (it is untrusted input)."""


class MigrationError(StoreError):
    pass


class BusyError(MemosError):
    """Another process holds something we need (the profile lock, the DB for too long)."""

    exit_code = 7


class ReadOnlyError(BusyError):
    """This process opened the profile read-only (a second terminal app beside the first):
    nothing was written."""


class LeaseLostError(BusyError):
    """A worker's lease on a job expired and another worker claimed it: its result is dropped."""


class DaemonStartError(MemosError):
    """The daemon stopped before it was up (issue 12); its exit code is the child's (5 for a
    wrong passphrase, 7 when the profile is busy...)."""

    def __init__(self, message: str, code: int, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.exit_code = code


class EngineError(MemosError):
    exit_code = 8


class ModelNotFoundError(EngineError):
    pass


class OfflineError(EngineError):
    pass


class ModelWriteError(EngineError):
    """A model file could not be written (disk full, permissions): read-only work goes on
    without it where it can."""


class InvalidInputError(MemosError):
    exit_code = 9


class ProfileExistsError(InvalidInputError):
    pass


class SyncError(InvalidInputError):
    """Device sync refused something: a changeset or pairing file that is damaged, tampered
    with, from an unpaired device, or not meant for this device; or sync is not set up."""


class AmbiguousError(MemosError):
    """The request could mean more than one thing and nothing was changed; ``candidates``
    are the (id, text) pairs to choose from."""

    exit_code = 10

    def __init__(
        self, message: str, hint: str | None = None, candidates: tuple[tuple[str, str], ...] = ()
    ) -> None:
        super().__init__(message, hint)
        self.candidates = candidates


class NotTextError(InvalidInputError):
    """Input that is not text: invalid UTF-8 bytes, or lone surrogates from undecodable
    command-line arguments."""


def require_text(value: str, what: str) -> str:
    """``value`` if it is valid Unicode text (encodable as UTF-8), else NotTextError naming
    ``what``. Undecodable bytes in arguments arrive as lone surrogates (PEP 383)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NotTextError(
            f"{what} is not valid text (undecodable bytes at position {exc.start})",
            hint="give UTF-8 text; nothing was changed",
        ) from None
    return value


def decode_text(data: bytes, what: str) -> str:
    """``data`` decoded as UTF-8, else NotTextError naming ``what``."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotTextError(
            f"{what} is not valid UTF-8 text (bad byte at offset {exc.start})",
            hint="give UTF-8 text; nothing was changed",
        ) from None

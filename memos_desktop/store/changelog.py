"""The sync change log: one row per change of a stored entity, in hybrid-logical-clock order.

Field names only, never values: an exporter reads current values from the rows, so no memory
or chat text is duplicated here, and a purge leaves a tombstone without text.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from memos_desktop.store.hlc import HybridClock


def log_change(
    c: Any, clock: HybridClock, entity: str, entity_id: str, op: str, fields: Iterable[str]
) -> None:
    """Append to the sync change log (field names only; values are read from the row)."""
    c.execute(
        "INSERT INTO changes (hlc, device_id, entity, entity_id, op, fields, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            str(clock.now()),
            clock.device_id,
            entity,
            entity_id,
            op,
            json.dumps(sorted(fields)),
            time.time(),
        ),
    )

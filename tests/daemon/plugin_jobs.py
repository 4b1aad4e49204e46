"""Job kinds the daemon tests load into a real daemon process (``MEMOS_DESKTOP_DAEMON_PLUGINS``),
through the same ``register_handler`` other layers use.

``test.effect`` adds one memory (its payload's text) in the job's unit of work. On its first
attempt it first writes ``started`` to the payload's marker file and then hangs (``hang_s``),
so a test can kill or stop the daemon in the middle of the job, before its effect."""

from __future__ import annotations

import os
import time
from pathlib import Path

from memos_desktop.memory.handlers import JobContext, register_handler
from memos_desktop.store.jobs import Job
from memos_desktop.store.records import NewMemory


def effect(ctx: JobContext, job: Job) -> dict[str, int]:
    marker = Path(job.payload["marker"])
    marker.write_text(f"started {job.attempts} {os.getpid()}\n")
    if job.attempts == 1:
        time.sleep(float(job.payload.get("hang_s", 60)))
    cube = ctx.store.cubes.get(str(job.payload["cube_id"]))
    with ctx.effects():
        ctx.store.memories.add_many(cube, [NewMemory(job.payload["text"])], None, dedupe=False)
    return {"added": 1}


register_handler("test.effect", effect, description="a test job with one effect", lease_s=2.0)

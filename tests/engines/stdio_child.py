"""Child process of test_stdio.py: loads models while a thread writes to fd 2, then reports."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from memos_desktop.config import resolve_paths, setup_logging
from memos_desktop.engines.embeddings import LlamaEmbedder
from memos_desktop.engines.llamacpp import LlamaCppEngine, LlamaCppSettings


def main() -> None:
    chat, embed, work = (Path(a) for a in sys.argv[1:4])
    setup_logging(resolve_paths({"MEMOS_DESKTOP_HOME": str(work)}))  # as the app: to a file
    stop = threading.Event()
    written = 0

    def draw() -> None:  # as the terminal app draws on fd 2 from its own thread
        nonlocal written
        while not stop.is_set():
            os.write(2, b"frame\n")
            written += 1
            time.sleep(0.0005)

    t = threading.Thread(target=draw)
    t.start()
    time.sleep(0.02)
    settings = LlamaCppSettings(n_ctx=512, n_threads=1, n_threads_batch=1)
    engine = LlamaCppEngine(chat, settings, sha_cache_file=work / "sha.json")
    embedder = LlamaEmbedder(embed, "minilm", n_threads=1)
    time.sleep(0.02)
    stop.set()
    t.join()
    # after the drawing thread: print writes the text and its newline apart, and a frame
    # written between them would join the line (seen once)
    print("a python line on stderr", file=sys.stderr, flush=True)
    embedder.close()
    engine.close()
    os.write(1, f"{written}\n".encode())


if __name__ == "__main__":
    main()

"""A tiny stand-in for the Hugging Face hub's file endpoint, on 127.0.0.1, for download tests.

It answers what ``huggingface_hub.get_hf_file_metadata`` and our resumable GET ask for:
``HEAD/GET /{repo}/resolve/{revision}/{filename}`` with the hub's headers (X-Repo-Commit,
X-Linked-Etag = the file's sha256, X-Linked-Size), and honours ``Range: bytes=N-``. It can drop
the connection part-way through a body, to exercise resume. No traffic leaves the machine.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class HubFile:
    data: bytes
    sha256: str = ""  # what the server *claims* (defaults to the real one)
    size: int | None = None  # what the server claims (defaults to the real one)

    def __post_init__(self) -> None:
        self.sha256 = self.sha256 or hashlib.sha256(self.data).hexdigest()


@dataclass
class FakeHub:
    files: dict[str, HubFile] = field(default_factory=dict)  # "repo/filename" -> file
    drop_after: list[int] = field(default_factory=list)  # per GET: cut the body after N bytes
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, Range
    server: Any = None

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _file(self) -> HubFile | None:
                parts = self.path.split("/")
                # /{owner}/{name}/resolve/{rev}/{filename}
                if len(parts) < 6 or parts[3] != "resolve":
                    return None
                return hub.files.get(f"{parts[1]}/{parts[2]}/{parts[5]}")

            def _headers(self, f: HubFile, status: int, length: int, start: int = 0) -> None:
                self.send_response(status)
                self.send_header("X-Repo-Commit", "0" * 40)
                self.send_header("X-Linked-Etag", f'"{f.sha256}"')
                claimed = f.size if f.size is not None else len(f.data)
                self.send_header("X-Linked-Size", str(claimed))
                self.send_header("ETag", f'"{f.sha256}"')
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(length))
                if status == 206:
                    n = len(f.data)
                    self.send_header("Content-Range", f"bytes {start}-{n - 1}/{n}")
                self.end_headers()

            def do_HEAD(self) -> None:
                hub.requests.append(("HEAD", self.path, self.headers.get("Range")))
                f = self._file()
                if f is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._headers(f, 200, len(f.data))

            def do_GET(self) -> None:
                rng = self.headers.get("Range")
                hub.requests.append(("GET", self.path, rng))
                f = self._file()
                if f is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                body = f.data[start:]
                self._headers(f, 206 if rng else 200, len(body), start)
                cut = hub.drop_after.pop(0) if hub.drop_after else None
                if cut is not None:
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

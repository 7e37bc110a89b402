"""A scripted search engine on loopback for tests: it answers from a function of the query text."""

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# text -> documents [(id, score)] to answer with, or None to answer 500
Answer = Callable[[str], list[tuple[str, float]] | None]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # replays connect many clients at once


@contextmanager
def search_stub(answer: Answer) -> Iterator[str]:
    """Serve POST /search (the default http retriever body) until the block ends; yields the URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            documents = answer(body["inputs"]["text"])
            if documents is None:
                self.send_response(500)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            payload = json.dumps(
                {"documents": [{"document_id": d, "score": s} for d, s in documents]}
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/search"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

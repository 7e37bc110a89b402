"""A scripted search engine on loopback for tests: it answers from a function of the query text."""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from eval_pipelines_tests.loopback import LoopbackServer, QuietHandler, serving

# text -> documents [(id, score)] to answer with, or None to answer 500
Answer = Callable[[str], list[tuple[str, float]] | None]


class _Server(LoopbackServer):
    request_queue_size = 128  # replays connect many clients at once


@contextmanager
def search_stub(answer: Answer) -> Iterator[str]:
    """Serve POST /search (the default http retriever body) until the block ends; yields the URL."""

    class Handler(QuietHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            documents = answer(body["inputs"]["text"])
            if documents is None:
                self.reply(500, b"", content_type=None)
                return
            payload = {"documents": [{"document_id": d, "score": s} for d, s in documents]}
            self.reply(200, json.dumps(payload))

    with serving(_Server(Handler)) as server:
        yield f"http://127.0.0.1:{server.server_address[1]}/search"

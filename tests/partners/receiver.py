"""A real webhook receiver on loopback for the webhook tests: records each request and answers
with the next status of its script (or sleeps first, to make the sender time out)."""

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Receiver:
    url: str
    answers: list[int | str] = field(default_factory=list)  # a status, or "sleep"
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def next_answer(self) -> int | str:
        return self.answers.pop(0) if self.answers else 204


def serve() -> tuple[Receiver, ThreadingHTTPServer]:
    receiver = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            answer = receiver.next_answer()
            if answer == "sleep":
                time.sleep(2)
                answer = 204
            self.send_response(int(answer))
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver, server

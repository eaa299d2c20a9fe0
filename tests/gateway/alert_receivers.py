"""Alert receivers on 127.0.0.1 for the tests: a webhook, a FHIR endpoint, an MLLP listener.

The webhook and FHIR endpoints are small HTTP servers (``http.server``) that keep
every request and answer with a given sequence of statuses; the MLLP listener is
hl7apy's own MLLP server, answering each ORU^R01 with an ACK (or the NACKs asked
for first) built by hl7apy from the received message.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hl7apy.core import Message
from hl7apy.mllp import AbstractHandler, MLLPServer
from hl7apy.parser import parse_message


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)  # when it was read whole


@dataclass
class _State:
    statuses: list[int] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    fhir: bool = False
    entry_status: str = "201 Created"  # each entry's status in a FHIR transaction-response


def _transaction_response(body: bytes, status: str) -> bytes:
    bundle = json.loads(body)
    entries = [
        {"response": {"status": status, "location": f"{e['request']['url']}/{i + 1}"}}
        for i, e in enumerate(bundle.get("entry", []))
    ]
    answer = {"resourceType": "Bundle", "type": "transaction-response", "entry": entries}
    return json.dumps(answer).encode()


class _Handler(BaseHTTPRequestHandler):
    state: _State

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        state = self.server.state  # type: ignore[attr-defined]
        state.requests.append(Request(self.path, dict(self.headers.items()), body))
        status = state.statuses.pop(0) if state.statuses else 200
        fhir = state.fhir and status == 200
        answer = _transaction_response(body, state.entry_status) if fhir else b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/fhir+json" if state.fhir else "text/plain")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:  # quiet
        pass


class HttpReceiver:
    """An HTTP server on 127.0.0.1 that keeps each POST and answers ``statuses`` in turn."""

    def __init__(self, statuses: list[int] | None = None, *, fhir: bool = False) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.state = _State(list(statuses or []), fhir=fhir)  # type: ignore[attr-defined]
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def requests(self) -> list[Request]:
        return self.server.state.requests  # type: ignore[attr-defined,no-any-return]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def ack_for(er7: str, code: str) -> str:
    """An hl7apy-built ACK (``code``: AA, AE, AR) of the ORU^R01 ``er7``.

    ``AA:other`` acknowledges another message (MSA-2 not the ORU's control ID).
    """
    code, _, other = code.partition(":")
    incoming = parse_message(er7, find_groups=False)
    ack = Message("ACK", version="2.5")
    ack.msh.msh_3 = "RIS"
    ack.msh.msh_5 = incoming.msh.msh_3.value
    ack.msh.msh_9 = "ACK^R01^ACK"
    ack.msh.msh_10 = "ACK" + incoming.msh.msh_10.value[:17]
    ack.msh.msh_11 = "P"
    ack.msa.msa_1 = code
    ack.msa.msa_2 = "OTHER" if other else incoming.msh.msh_10.value
    return "\x0b" + ack.to_er7() + "\x1c\x0d"


class MllpListener:
    """hl7apy's MLLP server on 127.0.0.1: keeps each ORU^R01, answers ``codes`` then AA.

    With ``tls`` (a server :class:`ssl.SSLContext`), each connection is TLS first
    (Python's ssl under hl7apy's server, as a TLS-terminating interface engine).
    """

    def __init__(
        self, codes: list[str] | None = None, *, tls: ssl.SSLContext | None = None
    ) -> None:
        self.codes = list(codes or [])
        self.messages: list[str] = []
        listener = self

        class Handler(AbstractHandler):  # type: ignore[misc]
            def reply(self) -> str:
                listener.messages.append(self.incoming_message)
                code = listener.codes.pop(0) if listener.codes else "AA"
                return ack_for(self.incoming_message, code)

        class Server(MLLPServer):  # type: ignore[misc]
            def get_request(self) -> tuple[Any, Any]:
                connection, address = super().get_request()
                if tls is None:
                    return connection, address
                try:
                    return tls.wrap_socket(connection, server_side=True), address
                except (ssl.SSLError, OSError):
                    listener.refused += 1  # a failed handshake: nothing was received
                    connection.close()
                    raise

        self.refused = 0
        self.server = Server("127.0.0.1", 0, {"ORU^R01^ORU_R01": (Handler,)}, timeout=10)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

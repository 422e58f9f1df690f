"""Field deltas over a real WebSocket, against a scripted stand-in for the
broker (the websockets server, answering permessage-deflate as tickwire's
broker does): the handshake asks for deltas and compression, a new
connection never uses a base from the one before, and a delta without its
base makes the client reconnect and start again from full quotes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

from tickwire import MissingBaseError, Quote, State, Subscriber

from conftest import run
from deltakit import binary_delta, binary_quote, same_bits
from test_broker import RECV_TIMEOUT, fast_backoff

BROKER_ANSWER = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

A = [Quote("A", 1, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 11),
     Quote("A", 2, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 12),
     Quote("A", 3, 1.5, -0.0, 3.0, 4.0, 5.0, 6.0, 13),
     Quote("A", 4, 1.5, -0.0, 3.0, 4.0, 5.0, 7.0, 14)]


class ScriptedBroker:
    """Answers each connection's first subscribe, then sends that connection's
    script (binary frames); records each handshake path and close code."""

    def __init__(self, scripts: list[list[bytes]]) -> None:
        self.scripts = scripts
        self.paths: list[str] = []
        self.subscribes: list[dict[str, Any]] = []
        self.close_codes: list[int | None] = []
        self.drop_first = asyncio.Event()

    async def handler(self, ws: ServerConnection) -> None:
        n = len(self.paths)
        self.paths.append(ws.request.path)
        req = json.loads(await ws.recv())
        self.subscribes.append(req)
        ack: dict[str, Any] = {"type": "subscribed", "id": req["id"], "topics": req["topics"], "epoch": "e1"}
        if "since" in req:
            ack["recovered"] = True
        await ws.send(json.dumps(ack))
        for frame in self.scripts[n]:
            await ws.send(frame)
        if n == 0:
            await self.drop_first.wait()  # the client has what was sent
            await ws.close(1012)
        await ws.wait_closed()
        self.close_codes.append(ws.close_code)


def test_new_connection_has_no_base_and_missing_base_reconnects():
    broker = ScriptedBroker([
        [binary_quote(A[0]), binary_delta(A[1], 0b1)],   # connection 1: full, then a delta
        [binary_delta(A[2], 0b10)],                      # 2: a delta on connection 1's quote: refused
        [binary_quote(A[2]), binary_delta(A[3], 0b100000)],  # 3: starts in full
    ])
    deflate = ServerPerMessageDeflateFactory(server_no_context_takeover=True, client_no_context_takeover=True)

    async def main():
        errors: list[Exception] = []
        async with serve(broker.handler, "127.0.0.1", 0, extensions=[deflate], compression=None) as server:
            port = server.sockets[0].getsockname()[1]
            async with Subscriber(f"ws://127.0.0.1:{port}/ws", format="binary", on_error=errors.append,
                                  **fast_backoff()) as sub:
                assert sub.extensions == BROKER_ANSWER  # offered, and the broker's answer accepted
                await sub.subscribe("A")
                got = [await sub.recv(RECV_TIMEOUT) for _ in range(2)]
                broker.drop_first.set()
                got += [await sub.recv(RECV_TIMEOUT) for _ in range(2)]
                assert sub.connections == 3 and sub.state == State.OPEN
        assert len(got) == 4 and all(same_bits(g, w) for g, w in zip(got, A))
        assert [type(e) for e in errors] == [MissingBaseError]
        assert (errors[0].seq, errors[0].base_seq) == (3, None)  # connection 1's base was not used
        assert sub.missing_bases == 1 and sub.deltas_applied == 2 and sub.gaps == 0
        assert broker.close_codes[:2] == [1012, 1002]  # the client dropped connection 2 itself
        assert broker.paths == ["/ws?format=binary&delta=1"] * 3
        # Each reconnect resumed from what the application had: seq 2.
        resumed = {"epoch": "e1", "seqs": {"A": 2}}
        assert [r.get("since") for r in broker.subscribes] == [None, resumed, resumed]

    run(main())

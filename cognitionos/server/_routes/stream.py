"""``GET /v1/flags/stream``: flag changes as Server-Sent Events that survive proxies.

- The first connection gets one ``snapshot`` event (every definition), then a ``change`` event
  per change, in commit order. Each event's ``id`` is the sequence number of the flag audit
  stream in the store, shared by every server process.
- A reconnection with ``Last-Event-ID`` gets every change after that id (replayed from the
  store, no gap), then the live ones; an id the store no longer reaches gets a fresh snapshot.
- A stream ends after ``sse_max_seconds`` (300); the client reconnects with ``Last-Event-ID``
  (the ``retry`` field says after 2 s), which also spreads long-lived clients over processes.
- A ``: heartbeat`` comment every ``sse_heartbeat`` seconds keeps idle proxies from closing the
  connection; ``X-Accel-Buffering: no`` and ``Cache-Control: no-cache`` stop buffering.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Header, Request
from starlette.responses import StreamingResponse

from cognitionos.flags._store import AUDIT_STREAM
from cognitionos.server._http import Principal, require, state_of
from cognitionos.server._problems import ApiError

__all__ = ["router"]

router = APIRouter(prefix="/v1/flags", tags=["flags"])


def _event(name: str, seq: int, data: Any) -> bytes:
    body = json.dumps(data, separators=(",", ":"), default=str)
    return f"id: {seq}\nevent: {name}\ndata: {body}\n\n".encode()


@router.get(
    "/stream",
    summary="Flag changes as Server-Sent Events (snapshot, then changes; Last-Event-ID resumes)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    p: Annotated[Principal, Depends(require("flags:read"))],
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    state = state_of(request)
    store = state.store
    stream_name = f"tenants/{p.tenant_id}/{AUDIT_STREAM}"
    engine = await anyio.to_thread.run_sync(state.flags, p.tenant_id)
    after: int | None = None
    if last_event_id is not None:
        try:
            after = int(last_event_id)
        except ValueError:
            raise ApiError(400, "Last-Event-ID must be an event id from this stream") from None
        if after < 0:
            raise ApiError(400, "Last-Event-ID must be an event id from this stream")

    def last_seq() -> int:
        seq = 0
        while True:
            batch = store.read(stream_name, after=seq, limit=1000)
            if not batch:
                return seq
            seq = batch[-1].seq

    def read_after(seq: int) -> list[Any]:
        events: list[Any] = store.read(stream_name, after=seq, limit=500)
        return events

    async def events() -> AsyncIterator[bytes]:
        position = after
        yield f"retry: 2000\n: heartbeat every {state.settings.sse_heartbeat:g}s\n\n".encode()
        newest = await anyio.to_thread.run_sync(last_seq)
        if position is None or position > newest:
            # a first connection, or an id this store never issued: start from a full state
            await anyio.to_thread.run_sync(engine.refresh)
            position = newest
            yield _event("snapshot", position, engine.export())
        beat = time.monotonic()
        ends = beat + state.settings.sse_max_seconds
        while time.monotonic() < ends:
            batch = await anyio.to_thread.run_sync(read_after, position)
            for ev in batch:
                item = json.loads(ev.payload)
                change = {
                    "action": item.get("action"),
                    "flag": item.get("flag"),
                    "definition": item.get("after"),
                    "actor": item.get("actor"),
                    "at_ns": item.get("at_ns"),
                }
                yield _event("change", ev.seq, change)
                position = ev.seq
            now = time.monotonic()
            if batch:
                beat = now
            elif now - beat >= state.settings.sse_heartbeat:
                yield b": heartbeat\n\n"
                beat = now
            await anyio.sleep(state.settings.sse_poll_interval)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

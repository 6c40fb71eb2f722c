"""What requests to the server may hold: bodies of bounded size, a bounded number at once,
each read before any parsing; client file names cut short and made safe to show (never
used as paths); and a private copy of the model for an explanation."""

import asyncio
import copy
import os
import re
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from fastapi.responses import JSONResponse


def error_response(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


MAX_CONCURRENT = 8  # requests with a body in flight at once; the others wait their turn
WAIT_SECONDS = 10.0  # how long a request waits for its turn before a 503
QUEUE_PER_TURN = 32  # requests waiting, per turn, beyond which a 503 comes at once
BODY_SECONDS = 60.0  # a request's whole body must arrive within this, once its turn comes


class BodyLimit:
    """ASGI middleware: at most max_concurrent request bodies in flight, each read whole
    and of at most max_bytes before any parsing.

    A declared Content-Length over the limit is refused (413) before reading anything; a
    chunked body is counted as it arrives. The body is handed on in memory, so the multipart
    parser never sees more than the limit. A request with a body waits for one of
    max_concurrent turns, held until its answer is sent, so what the requests in flight
    hold (the body, its parsed parts, the decoded image) is bounded by the cap; a waiting
    request holds no more than the server's read buffer, since its body is not read yet.
    A turn not come within wait_seconds, or a line already QUEUE_PER_TURN times the cap
    long, answers 503 with Retry-After; a body slower than BODY_SECONDS answers 408, so
    slow clients cannot keep the turns.
    """

    def __init__(self, app, max_bytes: int, max_concurrent: int = MAX_CONCURRENT,
                 wait_seconds: float = WAIT_SECONDS):  # fmt: skip
        self.app = app
        self.max_bytes = max_bytes
        self.turns = asyncio.Semaphore(max_concurrent)
        self.max_waiting = QUEUE_PER_TURN * max_concurrent
        self.waiting = 0
        self.wait_seconds = wait_seconds
        self.too_large = f"request body over the limit of {max_bytes:,} bytes"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return await error_response(400, "bad Content-Length header")(scope, receive, send)
            if int(length) > self.max_bytes:
                return await error_response(413, self.too_large)(scope, receive, send)
        if no_body(scope["method"], length, headers):
            return await self.app(scope, receive, send)  # nothing to hold: no turn to take
        refusal = await self.take_turn()
        if refusal is not None:
            return await refusal(scope, receive, send)
        try:
            try:
                body = await asyncio.wait_for(self.read_body(receive), BODY_SECONDS)
            except TimeoutError:
                body = error_response(408, f"request body not received within {BODY_SECONDS:g} s")
            if isinstance(body, JSONResponse):
                return await body(scope, receive, send)
            if body is None:  # the client has gone
                return None
            scope, replay = with_body(scope, receive, body)
            del body  # the app's parser holds it while it needs it, and no longer
            return await self.app(scope, replay, send)
        finally:
            self.turns.release()

    async def take_turn(self) -> JSONResponse | None:
        """Wait for a turn: None once it comes, else the 503 to answer."""
        if self.waiting >= self.max_waiting:
            busy = f"busy: {self.max_waiting:,} requests already waiting"
        else:
            self.waiting += 1
            try:
                await asyncio.wait_for(self.turns.acquire(), self.wait_seconds)
                return None
            except TimeoutError:
                busy = f"busy: no turn came within {self.wait_seconds:g} s"
            finally:
                self.waiting -= 1
        return error_response(503, busy + "; retry in a second", {"Retry-After": "1"})

    async def read_body(self, receive) -> bytes | JSONResponse | None:
        """The whole body; a 413 once it passes max_bytes; None if the client goes away."""
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return error_response(413, self.too_large)
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)


def no_body(method: str, length: bytes | None, headers: dict) -> bool:
    """A request that cannot carry a body: Content-Length 0, or a GET or HEAD that declares
    neither a length nor chunks (a body may come without either over HTTP/2, say)."""
    if length is not None:
        return int(length) == 0
    return method in ("GET", "HEAD") and b"transfer-encoding" not in headers


def with_body(scope, receive, body: bytes):
    """The scope and a receive that hand on `body`, its multipart file names shortened."""
    boundary = multipart_boundary(dict(scope["headers"]).get(b"content-type", b""))
    if boundary:
        shorter = shorten_filenames(body, boundary)
        if len(shorter) != len(body):
            body = shorter
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
            scope = {**scope, "headers": [*headers, (b"content-length", b"%d" % len(body))]}
    held = [body]

    async def replay():
        if held:  # handed on once and let go: the parsed parts need not sit beside it
            return {"type": "http.request", "body": held.pop(), "more_body": False}
        return await receive()

    return scope, replay


MAX_NAME_BYTES = 1000  # a part's file name is cut to its last bytes beyond this


def multipart_boundary(content_type: bytes) -> bytes | None:
    match = re.search(rb'boundary="?([^";,\s]{1,200})', content_type, re.IGNORECASE)
    if not content_type.lower().startswith(b"multipart/form-data") or not match:
        return None
    return match.group(1)


def shorten_filenames(body: bytes, boundary: bytes, limit: int = MAX_NAME_BYTES) -> bytes:
    """The body with every part's file name cut to its last `limit` bytes: the multipart
    parser refuses a header line over 4 KiB, and a name is only ever shown, shortened."""
    delimiter = b"--" + boundary
    parts = body.split(delimiter)
    for i, part in enumerate(parts[1:], 1):
        end = part.find(b"\r\n\r\n")
        if end < 0 or end <= limit:
            continue
        head = re.sub(
            rb'(filename="?)([^"\r\n]*)',
            lambda m: m.group(1) + m.group(2)[-limit:] if len(m.group(2)) > limit else m.group(0),
            part[:end],
            flags=re.IGNORECASE,
        )
        parts[i] = head + part[end:]
    return delimiter.join(parts)


def display_name(filename: str | None, default: str) -> str:
    """A client's file name made safe to show: last path part, printable, at most 100
    characters (a longer one keeps its start and its end)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] not in "CZ" or c == " ")
    name = name.strip()
    if len(name) > 100:  # keep the start and the end, where the suffix is
        name = name[:60] + "…" + name[-39:]
    return name or default


class ModelCopies:
    """Private copies of a model, lent to one request at a time, at most `n` made.

    Captum's attribution hooks the model it explains and runs a backward pass through it: on
    a copy of its own, an explanation cannot disturb the shared model's forward passes (which
    serve /predict without waiting for any lock) nor another explanation's hooks."""

    def __init__(self, model: torch.nn.Module, n: int):
        self.model = model
        self.spare: list[torch.nn.Module] = []
        self.lending = threading.BoundedSemaphore(n)
        self.lock = threading.Lock()

    @contextmanager
    def borrow(self) -> Iterator[torch.nn.Module]:
        with self.lending:
            with self.lock:
                model = self.spare.pop() if self.spare else None
            if model is None:  # the shared model is only read while it is copied
                model = copy.deepcopy(self.model)
            try:
                yield model
            finally:
                with self.lock:
                    self.spare.append(model)


# Explanations at once: each runs on one core (serve sets one torch thread)
EXPLAINERS = max(1, min(4, os.cpu_count() or 1))

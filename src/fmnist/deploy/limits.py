"""What a request to the server may hold: a body of bounded size, read before any parsing,
client file names cut short and made safe to show (never used as paths), and a private copy
of the model for an explanation."""

import copy
import os
import re
import threading
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from fastapi.responses import JSONResponse


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class BodyLimit:
    """ASGI middleware: read at most max_bytes of a request body, else answer 413.

    A declared Content-Length over the limit is refused before reading anything; a chunked
    body is counted as it arrives. The body is handed on in memory, so the multipart parser
    never sees more than the limit.
    """

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        too_large = f"request body over the limit of {self.max_bytes:,} bytes"
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None:
            if not length.isdigit():
                return await error_response(400, "bad Content-Length header")(scope, receive, send)
            if int(length) > self.max_bytes:
                return await error_response(413, too_large)(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await error_response(413, too_large)(scope, receive, send)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        boundary = multipart_boundary(dict(scope["headers"]).get(b"content-type", b""))
        if boundary:
            shorter = shorten_filenames(body, boundary)
            if len(shorter) != len(body):
                body = shorter
                headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
                scope = {**scope, "headers": [*headers, (b"content-length", b"%d" % len(body))]}
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


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

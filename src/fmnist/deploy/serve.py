"""HTTP API and web page for a model: FastAPI, served by uvicorn.

The model loads once, when the app is made. Every bad request (too large, empty,
truncated, not an image, too many pixels, a missing field) answers 4xx with
{"error": "..."}; file names sent by clients are only echoed back, never used as paths.
"""

# No `from __future__ import annotations` here: FastAPI reads the endpoint annotations,
# which refer to values local to the functions that make the routes.
import base64
import errno
import io
import logging
import os
import socket
from dataclasses import dataclass, field
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from PIL import Image
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from fmnist import __version__
from fmnist.analysis.explain import ExplainError
from fmnist.deploy.limits import (
    EXPLAINERS,
    MAX_CONCURRENT,
    BodyLimit,
    ModelCopies,
    display_name,
    error_response,
)
from fmnist.deploy.page import PAGE
from fmnist.deploy.predict import (
    FORMATS,
    MAX_PIXELS,
    ImageError,
    ImageTooLarge,
    Predictor,
    UnsupportedImage,
    read_image,
)
from fmnist.errors import FmnistError

MAX_BYTES = 10 * 2**20  # whole request body; a 12-megapixel phone JPEG is 3 to 6 MB
MAX_FILES = 32  # images in one batch request

log = logging.getLogger("fmnist.deploy.serve")


# ----------------------------------------------------------------------------
# Schema
# ----------------------------------------------------------------------------


class ClassProbability(BaseModel):
    label: str = Field(examples=["Sneaker"])
    index: int = Field(examples=[7])
    probability: float = Field(examples=[0.98])


class Prediction(BaseModel):
    predictions: list[ClassProbability] = Field(description="most probable first")
    input: str | None = Field(
        None, description="the 28x28 image the model saw, a PNG data URL (with include_input)"
    )


class BatchItem(BaseModel):
    filename: str = Field(description="the name the client sent, shortened; never used as a path")
    predictions: list[ClassProbability] = Field(description="most probable first")
    input: str | None = Field(None, description="as in /predict")


class Explanation(BaseModel):
    predictions: list[ClassProbability] = Field(description="most probable first")
    input: str = Field(description="the 28x28 image the model saw, a PNG data URL")
    heatmap: str = Field(
        description="Grad-CAM of the top class over the 28x28 input: an RGBA PNG data URL, "
        "red where the evidence is, transparent elsewhere"
    )
    method: str = Field(examples=["gradcam"])


class Batch(BaseModel):
    results: list[BatchItem]


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    model: str = Field(examples=["seed_cnn"])
    classes: list[str]
    test_accuracy: float | None = None
    version: str


class Error(BaseModel):
    error: str = Field(examples=["upload: not an image in an allowed format"])


ERRORS = {
    400: {"model": Error, "description": "empty, corrupt or truncated image"},
    413: {"model": Error, "description": f"body over {MAX_BYTES:,} bytes or too many pixels"},
    415: {"model": Error, "description": f"not an image in {', '.join(FORMATS)}"},
    422: {"model": Error, "description": "missing or malformed field"},
}


def png_data_url(image: np.ndarray, mode: str = "L") -> str:
    buf = io.BytesIO()
    Image.fromarray(image, mode).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def heatmap_rgba(attribution: np.ndarray) -> np.ndarray:
    """A (28, 28) attribution as RGBA: red with opacity growing with the positive evidence."""
    v = np.clip(attribution, 0, None)
    v = v / v.max() if v.max() > 0 else v
    rgba = np.zeros((*v.shape, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 1] = (90 * (1 - v)).astype(np.uint8)
    rgba[..., 3] = (215 * v).astype(np.uint8)
    return rgba


# ----------------------------------------------------------------------------
# Errors: every one answers {"error": "..."}
# ----------------------------------------------------------------------------


async def image_error(_request: Request, e: ImageError) -> JSONResponse:
    status = (
        413 if isinstance(e, ImageTooLarge) else 415 if isinstance(e, UnsupportedImage) else 400
    )
    return error_response(status, str(e))


async def explain_error(_request: Request, e: ExplainError) -> JSONResponse:
    return error_response(501, str(e))


async def http_error(_request: Request, e: HTTPException) -> JSONResponse:
    return error_response(e.status_code, str(e.detail))


async def validation_error(_request: Request, e: RequestValidationError) -> JSONResponse:
    problems, hint = [], ""
    for err in e.errors():
        loc = [str(x) for x in err.get("loc", ())]
        problems.append(f"{'.'.join(loc)}: {err.get('msg', 'invalid')}")
        if loc and loc[0] == "body":
            hint = "; send images as multipart/form-data field 'file' (batch: 'files')"
    return error_response(422, "; ".join(problems) + hint)


ERROR_HANDLERS = {
    ImageError: image_error,
    ExplainError: explain_error,
    HTTPException: http_error,
    RequestValidationError: validation_error,
}


# ----------------------------------------------------------------------------
# The model behind the routes
# ----------------------------------------------------------------------------


@dataclass
class ServedModel:
    """What one app's routes share: the model, the limits on the images it is sent, and the
    copies of the model its explanations borrow."""

    predictor: Predictor
    max_pixels: int
    max_files: int
    explainers: ModelCopies = field(init=False)

    def __post_init__(self) -> None:
        self.explainers = ModelCopies(self.predictor.module, EXPLAINERS)

    @property
    def n_classes(self) -> int:
        return len(self.predictor.classes)

    def classify(
        self, uploads: list[tuple[bytes, str]], top_k: int, include_input: bool
    ) -> list[dict]:
        """Top classes of each (bytes, display name) upload, with its 28x28 input if asked."""
        images = np.stack([read_image(data, name, self.max_pixels) for data, name in uploads])
        probs = self.predictor.probabilities(images)
        out = []
        for image, p in zip(images, probs, strict=True):
            item = {"predictions": self.predictor.top(p, top_k)}
            if include_input:
                item["input"] = png_data_url(image)
            out.append(item)
        return out

    def explain(self, data: bytes, name: str, top_k: int) -> dict:
        """Top classes of one upload and the Grad-CAM heatmap of the first."""
        from fmnist.analysis.explain import attribute, captum_or_fail

        captum_or_fail()
        image = read_image(data, name, self.max_pixels)
        probs = self.predictor.probabilities(image[None])[0]
        top = [int(probs.argmax())]
        with self.explainers.borrow() as model:
            heat = attribute(model, image[None], top, "gradcam")[0]
        return {
            "predictions": self.predictor.top(probs, top_k),
            "input": png_data_url(image),
            "heatmap": png_data_url(heatmap_rgba(heat), "RGBA"),
            "method": "gradcam",
        }


# ----------------------------------------------------------------------------
# Routes
# ----------------------------------------------------------------------------


async def one_file_field(request: Request) -> None:
    """/predict takes one image: several 'file' fields are refused, not silently cut."""
    form = await request.form()
    sent = len(form.getlist("file"))
    if sent > 1:
        raise HTTPException(
            400, f"{sent} 'file' fields; /predict takes one image (several: /predict/batch)"
        )


ImageFile = Annotated[UploadFile, File(description="an image: PNG, JPEG, WebP, GIF or BMP")]
OneFileField = Annotated[None, Depends(one_file_field)]
INCLUDE_INPUT = Query(False, description="also return the 28x28 input as a PNG data URL")


def top_k_query(n_classes: int):
    """?top_k=: 1 to all of the model's classes, all by default."""
    return Query(n_classes, ge=1, le=n_classes, description="classes to return")


def prediction_routes(served: ServedModel) -> APIRouter:
    """/predict, one image; /predict/batch, up to max_files."""
    router = APIRouter()
    top_k_classes = top_k_query(served.n_classes)
    max_files = served.max_files

    @router.post(
        "/predict",
        response_model=Prediction,
        response_model_exclude_none=True,
        responses=ERRORS,
        summary="Classify one image",
    )
    def predict(
        file: ImageFile,
        _one: OneFileField,
        top_k: int = top_k_classes,
        include_input: bool = INCLUDE_INPUT,
    ):
        name = display_name(file.filename, "upload")
        return served.classify([(file.file.read(), name)], top_k, include_input)[0]

    @router.post(
        "/predict/batch",
        response_model=Batch,
        response_model_exclude_none=True,
        responses=ERRORS,
        summary=f"Classify up to {max_files} images",
    )
    def predict_batch(
        files: Annotated[list[UploadFile], File(description=f"1 to {max_files} images")],
        top_k: int = top_k_classes,
        include_input: bool = INCLUDE_INPUT,
    ):
        if len(files) > max_files:
            raise ImageTooLarge(f"{len(files)} files; send at most {max_files} per request")
        names = [display_name(f.filename, f"file {i + 1}") for i, f in enumerate(files)]
        uploads = [(f.file.read(), n) for f, n in zip(files, names, strict=True)]
        results = served.classify(uploads, top_k, include_input)
        return {"results": [{"filename": n, **r} for n, r in zip(names, results, strict=True)]}

    return router


def explanation_routes(served: ServedModel) -> APIRouter:
    """/explain: where in the image the evidence for the top class is."""
    router = APIRouter()
    top_k_classes = top_k_query(served.n_classes)

    @router.post(
        "/explain",
        response_model=Explanation,
        responses={**ERRORS, 501: {"model": Error, "description": "Captum is not installed"}},
        summary="Grad-CAM of the top class over the 28x28 input",
    )
    def explain_image(file: ImageFile, _one: OneFileField, top_k: int = top_k_classes):
        return served.explain(file.file.read(), display_name(file.filename, "upload"), top_k)

    return router


# The page carries its script and style inline and talks only to this server
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; img-src data: blob:; connect-src 'self'",
    "X-Content-Type-Options": "nosniff",
}


def recorded_accuracy(metrics) -> float | None:
    """The description's test accuracy if it is a fraction, else None: a description can be
    edited by hand, and a string, NaN, an object or a number past float's range must not
    turn /health into a 500."""
    value = metrics.get("test_accuracy") if isinstance(metrics, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if 0 <= value <= 1 else None  # NaN fails both comparisons


def about_routes(served: ServedModel) -> APIRouter:
    """/health, the loaded model; /, the web page."""
    router = APIRouter()
    predictor = served.predictor

    @router.get("/health", response_model=Health, summary="The loaded model")
    def health():
        return {
            "status": "ok",
            "model": predictor.name,
            "classes": list(predictor.classes),
            "test_accuracy": recorded_accuracy(predictor.metrics),
            "version": __version__,
        }

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page():
        return HTMLResponse(PAGE, headers=PAGE_HEADERS)

    return router


# ----------------------------------------------------------------------------
# App
# ----------------------------------------------------------------------------

DESCRIPTION = (
    "Classify photos of clothing and shoes into the ten Fashion-MNIST classes. "
    "Photos are prepared the way the dataset was made: trimmed, resized to 28 pixels, "
    "sharpened, centred, negated, 8-bit grayscale."
)


def create_app(
    model: str | os.PathLike | Predictor,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_files: int = MAX_FILES,
    max_concurrent: int = MAX_CONCURRENT,
) -> FastAPI:
    predictor = model if isinstance(model, Predictor) else Predictor.load(model)
    served = ServedModel(predictor, max_pixels, max_files)
    app = FastAPI(
        title="Fashion-MNIST classifier",
        version=__version__,
        description=DESCRIPTION,
        exception_handlers=ERROR_HANDLERS,
    )
    app.add_middleware(BodyLimit, max_bytes=max_bytes, max_concurrent=max_concurrent)
    for routes in (prediction_routes, explanation_routes, about_routes):
        app.include_router(routes(served))
    return app


def check_port(host: str, port: int) -> None:
    """Refuse a port that is taken with a one-line error instead of uvicorn's exit status 1."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise FmnistError(f"--host {host}: cannot resolve ({e.strerror})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRNOTAVAIL:
                raise FmnistError(
                    f"--host {host}: not an address of this machine ({e.strerror}); "
                    "use 127.0.0.1, or 0.0.0.0 for every address"
                ) from None
            if e.errno == errno.EACCES:
                raise FmnistError(
                    f"cannot listen on {host}:{port} ({e.strerror}); ports below 1024 need "
                    "privileges: pick a --port from 1024 up"
                ) from None
            raise FmnistError(
                f"cannot listen on {host}:{port} ({e.strerror}); pick another --port"
            ) from None


def serve(
    model: str | os.PathLike = "best",
    host: str = "127.0.0.1",
    port: int = 8000,
    max_concurrent: int = MAX_CONCURRENT,
    **code,
):
    """Serve `model` until Ctrl-C, with at most `max_concurrent` uploads in flight; `code`:
    Predictor.load's model_code and allow_changed_code, for a model of the user's own code."""
    import torch
    import uvicorn

    if not 0 < port < 65536:
        raise FmnistError(f"--port {port}: give a port from 1 to 65535")
    if not 1 <= max_concurrent <= 1024:
        raise FmnistError(f"--max-concurrent {max_concurrent}: give 1 to 1024 requests at once")
    predictor = model if isinstance(model, Predictor) else Predictor.load(model, **code)
    app = create_app(predictor, max_concurrent=max_concurrent)
    check_port(host, port)
    # One image is about a megaflop, too little to split across cores; requests run in
    # parallel on the server's worker threads instead, and one torch thread each keeps them
    # from oversubscribing the cores.
    torch.set_num_threads(1)
    print(f"serving {model} at http://{host}:{port}/ (API schema at /docs; Ctrl-C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning")

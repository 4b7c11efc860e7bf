"""Fake providers that follow the documented request and response shapes, on a loopback server.

Each fake checks what the real API requires (auth header, JSON or multipart fields) and answers
like the real one, including its error bodies. ``faults`` are replies served (in order) before the
normal answer, to inject 429s, 5xx, slow or malformed answers.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from tests.engines.remote.loopback import LoopbackServer, Recorded, Reply

KEY = "test-key"


def png(width: int = 64, height: int = 64, color: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def _unauthorized(request: Recorded) -> bool:
    return request.headers.get("authorization") != f"Bearer {KEY}"


@dataclass
class FakeOpenAI:
    """``POST /v1/images/generations`` (JSON) and ``POST /v1/images/edits`` (multipart)."""

    faults: list[Reply] = field(default_factory=list)
    revised_prompt: str | None = "a revised prompt"
    answer_with_url: bool = False
    server: LoopbackServer | None = None

    def __call__(self, request: Recorded) -> Reply:
        if request.path.startswith("/cdn/"):
            return Reply(body=png(32, 32), headers={"Content-Type": "image/png"})
        if self.faults:
            return self.faults.pop(0)
        if _unauthorized(request):
            return _openai_error(401, "Incorrect API key provided", "invalid_api_key")
        if request.path == "/v1/images/generations":
            body = request.json()
            prompt, model, n, size = body["prompt"], body.get("model"), body.get("n", 1), body.get("size")
        elif request.path == "/v1/images/edits":
            form = request.form()
            if "image" not in form or form["image"].filename is None:
                return _openai_error(400, "image is required", "invalid_request_error", param="image")
            prompt, model = form["prompt"].text, form["model"].text
            n, size = int(form["n"].text), form["size"].text if "size" in form else None
        else:
            return _openai_error(404, f"Unknown request URL: POST {request.path}", "unknown_url")
        if "forbidden" in prompt:
            return _openai_error(400, "Your request was rejected by our safety system.", "content_policy_violation")
        if size and size not in ("1024x1024", "1792x1024", "1024x1792", "256x256", "512x512", "1536x1024", "1024x1536"):
            return _openai_error(400, f"'{size}' is not one of the supported sizes", "invalid_value", param="size")
        width, height = (int(side) // 16 for side in (size or "1024x1024").split("x"))
        data = []
        for _ in range(n):
            if self.answer_with_url and self.server is not None:
                item: dict[str, Any] = {"url": f"{self.server.url}/cdn/image.png"}
            else:
                item = {"b64_json": base64.b64encode(png(width, height)).decode()}
            if self.revised_prompt and model == "dall-e-3":
                item["revised_prompt"] = self.revised_prompt
            data.append(item)
        return Reply(json={"created": 1700000000, "data": data}, headers={"x-request-id": "req_123"})


def _openai_error(status: int, message: str, code: str, param: str | None = None) -> Reply:
    return Reply(
        status, json={"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
    )


@dataclass
class FakeReplicate:
    """Predictions API: create (with ``Prefer: wait``), get, cancel; output files; the files API."""

    faults: list[Reply] = field(default_factory=list)
    polls_before_done: int = 0
    fail_with: str | None = None
    server: LoopbackServer | None = None
    predictions: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _polls: dict[str, int] = field(default_factory=dict)

    def __call__(self, request: Recorded) -> Reply:
        if request.path.startswith("/delivery/"):
            return Reply(body=png(48, 48, "orange"), headers={"Content-Type": "image/png"})
        if self.faults:
            return self.faults.pop(0)
        if _unauthorized(request):
            return _problem(401, "Unauthenticated", "You did not pass a valid authentication token")
        if request.method == "POST" and request.path == "/v1/files":
            form = request.form()
            return Reply(
                201,
                json={"id": "file1", "urls": {"get": f"{self.base}/v1/files/file1"}, "size": len(form["content"].data)},
            )
        if request.method == "POST" and (
            match := re.fullmatch(r"/v1/models/([^/]+)/([^/]+)/predictions", request.path)
        ):
            return self._create(request, model=f"{match[1]}/{match[2]}", version=None)
        if request.method == "POST" and request.path == "/v1/predictions":
            return self._create(request, model=None, version=request.json().get("version"))
        if (match := re.fullmatch(r"/v1/predictions/(\w+)/cancel", request.path)) and request.method == "POST":
            prediction = self.predictions[match[1]]
            if prediction["status"] not in ("succeeded", "failed"):
                prediction["status"] = "canceled"
            return Reply(json=prediction)
        if (match := re.fullmatch(r"/v1/predictions/(\w+)", request.path)) and request.method == "GET":
            return Reply(json=self._advance(match[1]))
        return _problem(404, "Not found", f"no route {request.method} {request.path}")

    @property
    def base(self) -> str:
        assert self.server is not None
        return self.server.url

    def _create(self, request: Recorded, model: str | None, version: str | None) -> Reply:
        body = request.json()
        payload = body.get("input")
        if not isinstance(payload, dict) or not payload.get("prompt"):
            return Reply(
                422,
                json={
                    "title": "Input validation failed",
                    "detail": "input: prompt is required",
                    "status": 422,
                    "invalid_fields": [
                        {"type": "required", "field": "input.prompt", "description": "prompt is required"}
                    ],
                },
            )
        if "unknown" in (model or ""):
            return _problem(404, "Not found", "The requested resource could not be found.")
        prediction_id = f"p{next(self._ids)}"
        self.predictions[prediction_id] = {
            "id": prediction_id,
            "model": model,
            "version": version or "v1hash",
            "input": payload,
            "status": "starting",
            "output": None,
            "error": None,
            "logs": "",
            "urls": {
                "get": f"{self.base}/v1/predictions/{prediction_id}",
                "cancel": f"{self.base}/v1/predictions/{prediction_id}/cancel",
            },
        }
        self._polls[prediction_id] = 0
        if request.headers.get("prefer", "").startswith("wait") and self.polls_before_done == 0:
            self._finish(prediction_id)
        return Reply(201, json=self.predictions[prediction_id])

    def _advance(self, prediction_id: str) -> dict[str, Any]:
        prediction = self.predictions[prediction_id]
        if prediction["status"] in ("succeeded", "failed", "canceled"):
            return prediction
        self._polls[prediction_id] += 1
        done = self._polls[prediction_id]
        if done >= self.polls_before_done:
            self._finish(prediction_id)
        else:
            prediction["status"] = "processing"
            total = self.polls_before_done * 10
            prediction["logs"] = f"Using seed: 1\n{done * 10}/{total} [00:01<00:02]\n"
        return prediction

    def _finish(self, prediction_id: str) -> None:
        prediction = self.predictions[prediction_id]
        if self.fail_with:
            prediction.update(status="failed", error=self.fail_with)
            return
        prediction.update(
            status="succeeded",
            output=[f"{self.base}/delivery/{prediction_id}/out-0.png"],
            metrics={"predict_time": 0.1},
        )


def _problem(status: int, title: str, detail: str) -> Reply:
    return Reply(status, json={"title": title, "detail": detail, "status": status})


STABILITY_RATIOS = {"16:9": (128, 72), "1:1": (64, 64), "9:16": (72, 128), "3:2": (96, 64), "21:9": (168, 72)}


@dataclass
class FakeStability:
    """``/v2beta/stable-image/generate/{core,ultra,sd3}`` and ``/edit/inpaint``: multipart in, image bytes out."""

    faults: list[Reply] = field(default_factory=list)
    filtered: bool = False
    as_json: bool = False

    def __call__(self, request: Recorded) -> Reply:
        if self.faults:
            return self.faults.pop(0)
        if _unauthorized(request):
            return Reply(401, json={"id": "e1", "name": "unauthorized", "errors": ["authorization: invalid key"]})
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            return Reply(
                400, json={"id": "e2", "name": "bad_request", "errors": ["content-type: must be multipart/form-data"]}
            )
        form = request.form()
        route = request.path.removeprefix("/v2beta/stable-image/")
        if route not in ("generate/core", "generate/ultra", "generate/sd3", "edit/inpaint"):
            return Reply(404, json={"id": "e3", "name": "not_found", "errors": [f"no route {request.path}"]})
        if "forbidden" in form["prompt"].text:
            return Reply(
                403,
                json={
                    "id": "e4",
                    "name": "content_moderation",
                    "errors": ["Your request was flagged by our content moderation system"],
                },
            )
        if route == "edit/inpaint" and ("image" not in form or "mask" not in form):
            return Reply(400, json={"id": "e5", "name": "bad_request", "errors": ["image and mask are required"]})
        ratio = form["aspect_ratio"].text if "aspect_ratio" in form else "1:1"
        width, height = STABILITY_RATIOS.get(ratio, (64, 64))
        seed = form["seed"].text if "seed" in form else "12345"
        finish = "CONTENT_FILTERED" if self.filtered else "SUCCESS"
        if self.as_json:
            image = base64.b64encode(png(width, height, "purple")).decode()
            return Reply(json={"image": image, "finish_reason": finish, "seed": int(seed)})
        return Reply(
            body=png(width, height, "purple"),
            headers={"Content-Type": "image/png", "finish-reason": finish, "seed": seed},
        )


@dataclass
class FakeChat:
    """``POST /v1/chat/completions``: answers ``contents`` in order (the last one repeats)."""

    contents: list[str] = field(default_factory=list)
    faults: list[Reply] = field(default_factory=list)
    reject_json_schema: bool = False

    def __call__(self, request: Recorded) -> Reply:
        if self.faults:
            return self.faults.pop(0)
        if request.path != "/v1/chat/completions":
            return Reply(404, json={"error": {"message": "not found", "type": "invalid_request_error"}})
        body = request.json()
        if self.reject_json_schema and body.get("response_format", {}).get("type") == "json_schema":
            return Reply(
                400,
                json={
                    "error": {
                        "message": "response_format json_schema is not supported",
                        "type": "invalid_request_error",
                        "param": "response_format",
                    }
                },
            )
        content = self.contents.pop(0) if len(self.contents) > 1 else self.contents[0]
        return Reply(
            json={
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": body.get("model"),
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
            }
        )


def ideas_json(count: int, prefix: str = "Idea") -> str:
    """A well-formed structured answer with ``count`` ideas."""
    ideas = [
        {
            "title": f"{prefix} {index}",
            "description": f"Description of {prefix.lower()} {index}.",
            "metatags": ["neon", "city", f"tag{index}"],
            "prompt": f"a neon city street number {index}, rain, cinematic lighting",
            "negative_prompt": "blurry, low quality",
        }
        for index in range(1, count + 1)
    ]
    return json.dumps({"ideas": ideas})


@contextmanager
def serve(fake: Any) -> Iterator[LoopbackServer]:
    server = LoopbackServer(fake)
    if hasattr(fake, "server"):
        fake.server = server
    try:
        yield server
    finally:
        server.close()

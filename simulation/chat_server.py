"""A local server that speaks OpenAI's chat-completions API, for automated reviewers to call.

No hosted model is reachable from the machines this project is built and tested on, so the
`llm` reviewers (`automation.llm`) are exercised against this: real HTTP, the same request and
response shapes (`POST /v1/chat/completions`, bearer key, `choices[0].message.content`,
`usage`), and whatever a real endpoint does wrong: malformed answers, slow answers, 429s with
`Retry-After`, 5xx. What it answers is decided by a function of the item the prompt carries
(`Reply`), so a test scripts each item's fate and a simulated world answers from its truth.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


@dataclass(frozen=True)
class Reply:
    """What the server does with one request: answer `content` (a 200), or fail with
    `status`; after `delay_s` either way."""

    content: str | None = None
    status: int = 200
    delay_s: float = 0.0
    retry_after: float | None = None
    usage: bool = True  # report token counts, as OpenAI does


def answer(label: str, confidence: float, rationale: str = "as the definition says") -> str:
    """A well-formed answer's text."""
    return json.dumps({"label": label, "confidence": confidence, "rationale": rationale})


def app(reply: Callable[[dict], Reply], key: str) -> FastAPI:
    """The endpoint: `reply` is given the item (the last user message, parsed) and each
    request is counted in `app.state.requests` by item id."""
    api = FastAPI()
    api.state.requests = {}

    @api.post("/v1/chat/completions")
    async def complete(request: Request):
        if request.headers.get("authorization") != f"Bearer {key}":
            return JSONResponse({"error": {"message": "invalid api key"}}, status_code=401)
        body = await request.json()
        item = json.loads(body["messages"][-1]["content"])
        item_id = str(item.get("item_id"))
        api.state.requests[item_id] = api.state.requests.get(item_id, 0) + 1
        what = reply(item)
        if what.delay_s:
            await asyncio.sleep(what.delay_s)  # a slow model, as the client meets one
        if what.status != 200:
            headers = {"retry-after": f"{what.retry_after:g}"} if what.retry_after else {}
            error = {"error": {"message": f"status {what.status}", "type": "server_error"}}
            return JSONResponse(error, status_code=what.status, headers=headers)
        prompt = sum(len(m["content"]) for m in body["messages"]) // 4
        completion = len(what.content or "") // 4
        payload = {
            "id": f"chatcmpl-{item_id}",
            "object": "chat.completion",
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": what.content},
                    "finish_reason": "stop",
                }
            ],
        }
        if what.usage:
            payload["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        return payload

    return api


class ChatServer:
    """`app` served over HTTP on a free local port, in a thread: `with ChatServer(...) as s:`
    then `s.base_url` (ending in `/v1`) and `s.requests`."""

    def __init__(self, reply: Callable[[dict], Reply], key: str = "local-key") -> None:
        self.api = app(reply, key)
        config = uvicorn.Config(self.api, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ChatServer:
        self.thread.start()
        while not self.server.started:  # readiness: uvicorn sets it once the socket listens
            if not self.thread.is_alive():
                raise RuntimeError("the local chat server did not start")
            threading.Event().wait(0.01)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.should_exit = True
        self.thread.join()

    @property
    def base_url(self) -> str:
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    @property
    def requests(self) -> dict[str, int]:
        return self.api.state.requests

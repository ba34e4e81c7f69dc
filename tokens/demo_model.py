"""A built-in stand-in for a model provider, for development only (`DEBUG` on and no
`CODEX_UPSTREAM_URL`): it answers every turn with a short message in the Responses API's
server-sent events, so `make run` plus the real Codex CLI works end to end on a laptop."""

from __future__ import annotations

import json
import time
import uuid

MODEL = "console-demo"


def _prompt(body: bytes) -> str:
    """The last thing the user typed, from the Responses request body."""
    try:
        items = json.loads(body).get("input") or []
    except (ValueError, AttributeError):
        return ""
    for item in reversed(items if isinstance(items, list) else []):
        if isinstance(item, dict) and item.get("role") == "user" and item.get("type") == "message":
            parts = [c.get("text", "") for c in item.get("content") or []
                     if isinstance(c, dict) and c.get("type") == "input_text"]
            text = " ".join(p for p in parts if not p.lstrip().startswith("<"))
            if text.strip():
                return text.strip()
    return ""


def _event(kind: str, **fields) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()


def events(body: bytes, grant, pause: float = 0.02):
    """The answer, as the Responses API streams it: created, text deltas, the item, completed."""
    prompt = _prompt(body)
    text = (
        "Hello from the workspace console's demo model. No model provider is configured "
        "(CODEX_UPSTREAM_URL), so this is all I can say"
        + (f" to “{prompt[:200]}”" if prompt else "")
        + f". The console recorded this run for {grant.handle} with the access token "
        f"“{grant.token_name}”: see the Governance page of {grant.workspace_name}."
    )
    response_id, item_id = f"resp_{uuid.uuid4().hex}", f"msg_{uuid.uuid4().hex}"
    response = {"id": response_id, "object": "response", "created_at": int(time.time()),
                "model": MODEL, "status": "in_progress", "output": []}
    yield _event("response.created", response=response)
    yield _event("response.output_item.added", output_index=0, item={
        "type": "message", "id": item_id, "role": "assistant", "status": "in_progress",
        "content": []})
    words = text.split(" ")
    for n, word in enumerate(words):
        time.sleep(pause)
        yield _event("response.output_text.delta", item_id=item_id, output_index=0,
                     content_index=0, delta=word + (" " if n < len(words) - 1 else ""))
    item = {"type": "message", "id": item_id, "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}
    yield _event("response.output_item.done", output_index=0, item=item)
    words_in, words_out = len(body) // 4, len(words)
    yield _event("response.completed", response={
        **response, "status": "completed", "output": [item],
        "usage": {"input_tokens": words_in, "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": words_out, "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": words_in + words_out}})

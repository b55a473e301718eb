"""Tell another system something over a webhook, without letting it fail the caller.

Alerts (monitoring) and overturned appeals (labeling) post JSON to a URL the user configured:
a few tries with backoff, and the last problem returned as text to record, never raised.
"""

from __future__ import annotations

import time

import httpx


def post_json(url: str, payload: dict, retries: int = 3, timeout_s: float = 2.0) -> str | None:
    """Post `payload`; None once an answer under 400 comes back, else what went wrong."""
    problem = None
    for attempt in range(retries):
        try:
            response = httpx.post(url, json=payload, timeout=timeout_s)
            if response.status_code < 400:
                return None
            problem = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if attempt + 1 < retries:
            time.sleep(0.2 * 2**attempt)
    return f"webhook failed after {retries} tries: {problem}"

"""The Label Studio calls Flywheel makes, each retried with backoff while the server is away.

Label Studio restarts (it is Django's development server here) and its API answers 5xx while it
does; every call is retried a few times with exponential backoff and then fails with one clear
line. A 4xx is our mistake or the user's and is reported at once. Reads page through tasks one
request per page, so a retry repeats one page, never a whole pull.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from flywheel.errors import FlywheelError
from flywheel.settings import Settings
from labeling.server import credentials

T = TypeVar("T")
_TRANSIENT = {429, 500, 502, 503, 504}
# Listing reads only ids and times (computed task columns cost ~4x the time, and `include`
# strips annotations to their id anyway); `export_tasks` then reads the tasks in full.
TASK_FIELDS = "id,updated_at"
EXPORT_CHUNK = 500  # task ids per export request, well inside a URL's length


class LabelStudioAPI:
    """One Label Studio server, as the admin user of these settings."""

    def __init__(self, settings: Settings, backoff_s: float = 0.5) -> None:
        self.url = settings.labelstudio_url.rstrip("/")
        self.retries = settings.labelstudio_retries
        self.page_size = settings.labelstudio_page_size
        self.backoff_s = backoff_s
        token = credentials(settings).token
        self.sdk = LabelStudio(base_url=self.url, api_key=token, timeout=120.0)
        # The SDK sends the export's task filter as `ids`; the server reads `ids[]`.
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Token {token}"}, timeout=120.0
        )

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one API call, retrying transport errors and 5xx answers with backoff."""
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except ApiError as exc:
                if exc.status_code not in _TRANSIENT:
                    raise FlywheelError(
                        f"Label Studio refused {what}: HTTP {exc.status_code} {_detail(exc.body)}"
                    ) from exc
                problem: Exception = exc
            except httpx.TransportError as exc:
                problem = exc
            if attempt < self.retries:
                time.sleep(self.backoff_s * 2**attempt)
        raise FlywheelError(
            f"Label Studio at {self.url} did not answer {what} after {self.retries + 1} tries: "
            f"{type(problem).__name__}: {problem}"
        ) from problem

    def server_time(self) -> datetime:
        """The server's clock (its `Date` header), so watermarks never depend on ours."""
        response = self.call(
            "a clock read",
            lambda: self.sdk.users.with_raw_response.whoami(),
        )
        return parsedate_to_datetime(response.headers["date"])

    def iter_tasks(self, project: int, *filters: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Ids and update times of the tasks matching data-manager filters, in id order."""
        query = json.dumps(
            {"filters": {"conjunction": "and", "items": list(filters)}, "ordering": ["tasks:id"]}
        )
        page = 1
        while True:
            items = self.call(
                f"task page {page} of project {project}",
                lambda page=page: self._task_page(project, page, query),
            )
            yield from items
            if len(items) < self.page_size:
                return
            page += 1

    def export_tasks(self, project: int, task_ids: list[int]) -> list[dict[str, Any]]:
        """Tasks with their annotations in full (result, author, skip flag, lead time)."""
        tasks: list[dict[str, Any]] = []
        for start in range(0, len(task_ids), EXPORT_CHUNK):
            chunk = task_ids[start : start + EXPORT_CHUNK]
            params = [("exportType", "JSON"), ("download_all_tasks", "true")]
            params += [("ids[]", str(t)) for t in chunk]
            tasks += self.call(
                f"exporting {len(chunk)} tasks of project {project}",
                lambda params=params: self._get_json(f"/api/projects/{project}/export", params),
            )
        return tasks

    def _get_json(self, path: str, params: list[tuple[str, str]]) -> Any:
        response = self.http.get(path, params=params)
        if response.status_code >= 400:
            raise ApiError(status_code=response.status_code, body=_body(response))
        return response.json()

    def _task_page(self, project: int, page: int, query: str) -> list[dict[str, Any]]:
        try:
            pager = self.sdk.tasks.list(
                project=project,
                page=page,
                page_size=self.page_size,
                query=query,
                fields="all",
                include=TASK_FIELDS,
            )
        except ApiError as exc:
            if exc.status_code == 404 and page > 1:  # the previous page was exactly the last
                return []
            raise
        return [t.model_dump() if hasattr(t, "model_dump") else dict(t) for t in pager.items or []]


def _filter(column: str, operator: str, kind: str, value: Any) -> dict[str, Any]:
    return {"filter": f"filter:tasks:{column}", "operator": operator, "type": kind, "value": value}


def updated_after(stamp: str) -> dict[str, Any]:
    """Filter: tasks touched after a timestamp (an annotation made, changed or deleted)."""
    return _filter("updated_at", "greater", "Datetime", stamp)


def fewer_annotations_than(n: int) -> dict[str, Any]:
    """Filter: tasks still waiting for reviewers."""
    return _filter("total_annotations", "less", "Number", n)


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _detail(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("validation_errors") or body)[:300]
    return str(body)[:300]

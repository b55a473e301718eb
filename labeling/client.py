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
from datetime import datetime, timedelta
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
CLOCK_MARGIN = timedelta(seconds=2)  # the Date header has whole seconds
WATERMARK_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # the only form Label Studio's filter accepts


class LabelStudioAPI:
    """One Label Studio server, as the admin user of these settings."""

    def __init__(self, settings: Settings, backoff_s: float = 0.5) -> None:
        self.url = settings.labelstudio_url.rstrip("/")
        self.retries = settings.labelstudio_retries
        self.page_size = settings.labelstudio_page_size
        self.backoff_s = backoff_s
        token = credentials(settings).token
        # one retry layer, ours: the SDK would retry each of our tries again
        self.sdk = LabelStudio(base_url=self.url, api_key=token, timeout=120.0, max_retries=0)
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

    def import_tasks(
        self, project: int, tasks: list[dict[str, Any]], key: str, since: datetime
    ) -> dict[str, int]:
        """Import tasks exactly once each; their task ids by `data[key]`, a value unique to
        each task. An import whose answer was lost (a time-out, a dropped connection, a 5xx
        after the server stored them) may have created some or all of its tasks: before each
        retry the tasks created after `since` (the server's clock before the first try) are
        looked up by their key, and only the others are sent again."""
        wanted = {task["data"][key] for task in tasks}
        created: dict[str, int] = {}
        tried = False

        def attempt() -> dict[str, int]:
            nonlocal tried
            if tried:
                created.update(self.created_since(project, since, key, wanted))
            tried = True
            todo = [task for task in tasks if task["data"][key] not in created]
            if todo:
                response = self.sdk.projects.import_tasks(
                    id=project, request=todo, return_task_ids=True
                )
                if len(response.task_ids or []) != len(todo):
                    raise FlywheelError(
                        f"Label Studio returned {len(response.task_ids or [])} task ids for "
                        f"{len(todo)} tasks"
                    )
                created.update(zip((t["data"][key] for t in todo), response.task_ids, strict=True))
            return created

        return self.call(f"importing {len(tasks)} tasks into project {project}", attempt)

    def created_since(
        self, project: int, since: datetime, key: str, wanted: set[str] | None = None
    ) -> dict[str, int]:
        """Task ids by `data[key]` of the tasks created after `since` (those of `wanted` only)."""
        found: dict[str, int] = {}
        query = json.dumps(
            {
                "filters": {"conjunction": "and", "items": [created_after(since)]},
                "ordering": ["tasks:id"],
            }
        )
        page = 1
        while True:
            items = self._task_page(project, page, query, include="id,data")
            for task in items:
                value = (task.get("data") or {}).get(key)
                if value is not None and (wanted is None or value in wanted):
                    found[str(value)] = int(task["id"])
            if len(items) < self.page_size:
                return found
            page += 1

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

    def export_tasks(
        self,
        project: int,
        task_ids: list[int],
        exported: Callable[[int], None] = lambda done: None,
    ) -> list[dict[str, Any]]:
        """Tasks with their annotations in full (result, author, skip flag, lead time);
        `exported(n)` hears how many are read so far."""
        tasks: list[dict[str, Any]] = []
        for start in range(0, len(task_ids), EXPORT_CHUNK):
            chunk = task_ids[start : start + EXPORT_CHUNK]
            params = [("exportType", "JSON"), ("download_all_tasks", "true")]
            params += [("ids[]", str(t)) for t in chunk]
            tasks += self.call(
                f"exporting {len(chunk)} tasks of project {project}",
                lambda params=params: self._get_json(f"/api/projects/{project}/export", params),
            )
            exported(len(tasks))
        return tasks

    def _get_json(self, path: str, params: list[tuple[str, str]]) -> Any:
        response = self.http.get(path, params=params)
        if response.status_code >= 400:
            raise ApiError(status_code=response.status_code, body=_body(response))
        return response.json()

    def _task_page(
        self, project: int, page: int, query: str, include: str = TASK_FIELDS
    ) -> list[dict[str, Any]]:
        try:
            pager = self.sdk.tasks.list(
                project=project,
                page=page,
                page_size=self.page_size,
                query=query,
                fields="all",
                include=include,
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


def created_after(stamp: datetime) -> dict[str, Any]:
    """Filter: tasks created after a moment of the server's clock."""
    return _filter("created_at", "greater", "Datetime", stamp.strftime(WATERMARK_FORMAT))


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

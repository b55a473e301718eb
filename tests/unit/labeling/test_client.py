"""The Label Studio client against a real HTTP stub of its API: one retry layer, ours."""

import pytest

from flywheel.errors import FlywheelError
from flywheel.settings import Settings
from labeling.client import LabelStudioAPI
from tests.conftest import http_stub


@pytest.fixture
def unavailable():
    """A server that answers every request 503 and counts them."""
    seen = []

    def answer(handler, _body) -> int:
        seen.append(handler.path)
        return 503

    with http_stub(answer) as url:
        yield url, seen


def test_a_server_that_keeps_failing_gets_our_tries_and_no_more(tmp_path, unavailable):
    url, seen = unavailable
    settings = Settings(home=tmp_path, labelstudio_url=url, labelstudio_retries=2)
    api = LabelStudioAPI(settings, backoff_s=0.01)
    with pytest.raises(FlywheelError, match="did not answer a clock read after 3 tries"):
        api.server_time()
    assert len(seen) == 3  # the SDK's own retries would make it 9

"""The Label Studio client against a real HTTP stub of its API: one retry layer, ours."""

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from flywheel.errors import FlywheelError
from flywheel.settings import Settings
from labeling.client import LabelStudioAPI


@pytest.fixture
def unavailable():
    """A server that answers every request 503 and counts them."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"detail": "restarting"}')

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", seen
    server.shutdown()


def test_a_server_that_keeps_failing_gets_our_tries_and_no_more(tmp_path, unavailable):
    url, seen = unavailable
    settings = Settings(home=tmp_path, labelstudio_url=url, labelstudio_retries=2)
    api = LabelStudioAPI(settings, backoff_s=0.01)
    with pytest.raises(FlywheelError, match="did not answer a clock read after 3 tries"):
        api.server_time()
    assert len(seen) == 3  # the SDK's own retries would make it 9

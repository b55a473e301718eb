"""Prefect's temporary server keeps off the ports Flywheel's own servers listen on."""

from prefect.server.api.server import SubprocessASGIServer

from flows.home import TEMPORARY_SERVER_PORTS, keep_temporary_server_apart


def test_prefect_picks_its_temporary_port_from_the_range_we_set():
    before = SubprocessASGIServer._port_range
    try:
        keep_temporary_server_apart()
        picked = {SubprocessASGIServer().find_available_port() for _ in range(20)}
    finally:
        SubprocessASGIServer._port_range = before
    assert picked <= set(TEMPORARY_SERVER_PORTS)
    assert not picked & {8000, 8089, 8090}

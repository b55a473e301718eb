"""Label Studio's SSRF protection stays on, with one hole: the webhook receiver's address."""

import ipaddress

import pytest

from flywheel.errors import FlywheelError
from flywheel.settings import Settings
from labeling.server import banned_networks, ssrf_env


def _banned(address: str, networks: list[str]) -> bool:
    return any(ipaddress.ip_address(address) in ipaddress.ip_network(n) for n in networks)


def test_only_the_receivers_address_is_let_through():
    networks = banned_networks(["127.0.0.1"])
    assert not _banned("127.0.0.1", networks)
    for inside in ("127.0.0.2", "169.254.169.254", "10.1.2.3", "192.168.1.1", "::1", "fd00::1"):
        assert _banned(inside, networks), inside
    assert not _banned("93.184.216.34", networks)  # the public internet is not reserved
    assert _banned("127.0.0.1", banned_networks([]))  # no receiver: loopback refused too


def test_label_studio_starts_with_protection_on(tmp_path):
    env = ssrf_env(Settings(home=tmp_path, labelstudio_webhook_hosts="10.0.0.7, 127.0.0.1"))
    assert env["SSRF_PROTECTION_ENABLED"] == "true"
    networks = env["USER_ADDITIONAL_BANNED_SUBNETS"].split(",")
    assert not _banned("10.0.0.7", networks) and _banned("10.0.0.8", networks)
    with pytest.raises(FlywheelError, match="FLYWHEEL_LABELSTUDIO_WEBHOOK_HOSTS"):
        ssrf_env(Settings(home=tmp_path, labelstudio_webhook_hosts="localhost"))

"""prefect.yaml declares flows that exist, with parameters they accept, for policies that exist."""

import yaml
from prefect.flows import load_flow_from_entrypoint

from flywheel.policy import list_policies, load_policy
from flywheel.settings import REPO_ROOT


def test_every_deployment_points_at_a_real_flow_and_policy(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    spec = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())
    deployments = spec["deployments"]
    assert {d["parameters"]["policy"] for d in deployments} == set(list_policies())
    for deployment in deployments:
        flow = load_flow_from_entrypoint(deployment["entrypoint"])
        accepted = set(flow.parameters.properties)
        assert set(deployment["parameters"]) <= accepted
        assert set(flow.parameters.required) <= set(deployment["parameters"])
        assert deployment["work_pool"]["name"] == "flywheel"
    # every policy with queues has them tended between cycles, and only those
    tended = {d["parameters"]["policy"] for d in deployments if "queues.py" in d["entrypoint"]}
    assert tended == {p for p in list_policies() if load_policy(p).queues is not None} != set()

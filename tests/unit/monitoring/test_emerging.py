"""Emerging risk in all of the traffic: a burst test that holds its level, and a campaign the
champion allows found on the first run after the day it reached 5% of traffic."""

import numpy as np
import pandas as pd
import pytest

from flywheel.policy import Policy, load_policy
from monitoring.emerging import burst_p_values, emerging_risk
from monitoring.monitor import emerging_condition
from monitoring.report import Cluster
from simulation.world import WorldConfig, simulate

DAYS, CAMPAIGN_DAY = 14, 12


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy("spam")


def test_burst_p_values_hold_their_level_when_nothing_changed():
    rng = np.random.default_rng(0)
    rates = rng.uniform(0.001, 0.2, 20000)
    x, y = rng.binomial(500, rates), rng.binomial(10000, rates)
    p = burst_p_values(x, 500, y, 10000, 1.0)
    for alpha in (0.01, 0.05, 0.2):
        assert (p <= alpha).mean() <= alpha * 1.05  # exact conditional test: never above
    # a word no baseline item had, on five of the day's items, survives 1000 tests at 5%
    assert burst_p_values(np.array([5]), 500, np.array([0]), 10000, 1.0)[0] < 0.05 / 1000
    # the same counts on a noisy platform (dispersion 3) do not
    assert burst_p_values(np.array([5]), 500, np.array([0]), 10000, 3.0)[0] > 0.05 / 1000


def _world(policy: Policy, seed: int, share: float | None):
    """Two weeks of traffic as the log holds it, everything allowed; a hidden campaign on
    exactly `share` of day 12's items (its day-13 items removed); the first 5 days' items are
    the training data."""
    world = simulate(
        policy,
        WorldConfig(
            seed=seed,
            days=DAYS,
            items_per_day=500,
            emerging_day=DAYS,
            campaign_day=CAMPAIGN_DAY if share else None,
            campaign_share=0.2,
        ),
    )
    truth = world.truth[world.truth["set"] == "traffic"].reset_index(drop=True)
    campaign = truth["is_campaign"].to_numpy()
    on_day = truth["day"].eq(CAMPAIGN_DAY).to_numpy()
    keep = ~campaign
    if share:
        ordinary = int((on_day & ~campaign).sum())
        wanted = int(np.ceil(share * ordinary / (1 - share)))
        keep |= np.isin(np.arange(len(truth)), np.flatnonzero(campaign & on_day)[:wanted])
    log = world.traffic[keep].assign(
        scored_at=lambda f: pd.to_datetime(f["created_at"], utc=True),
        score=0.02,
        decision="allow",
    )
    days = truth.loc[keep, "day"].to_numpy()
    reference = log[days < 5][policy.feature_columns].reset_index(drop=True)
    until = pd.Timestamp(world.meta["emerging_starts"]) + pd.Timedelta(hours=1)
    return log[days >= 5], reference, set(log.loc[campaign[keep], "item_id"]), until


@pytest.mark.parametrize("seed", range(4))
def test_a_campaign_the_model_allows_is_found_the_first_run_after_its_day(policy, seed):
    log, reference, campaign, until = _world(policy, seed, 0.05)
    report = emerging_risk(log, reference, policy, until - pd.Timedelta(days=7), until)
    emerging = [c for c in report["clusters"] if c["emerging"]]
    assert emerging, report["clusters"]
    # one campaign, though its varied wording may split it into more than one cluster
    for cluster in emerging:
        assert cluster["allowed_share"] == 1.0
        assert set(cluster["representatives"]) <= campaign
        assert list(cluster["per_day"]) == [str((until - pd.Timedelta(days=2)).date())]
        message = emerging_condition(Cluster.model_validate(cluster)).message
        assert ", ".join(cluster["top"][:3]) in message
        if cluster["signature_bursts"]:
            assert f"on {cluster['signature_burst']['day']} carry its words" in message
    assert sum(c["size"] for c in emerging) >= 0.8 * len(campaign)
    assert all(b["baseline"] == "earlier traffic" for b in report["bursts"])


@pytest.mark.parametrize("seed", range(4))
def test_clean_traffic_raises_no_emerging_cluster(policy, seed):
    log, reference, _, until = _world(policy, seed, None)
    report = emerging_risk(log, reference, policy, until - pd.Timedelta(days=7), until)
    assert not [c for c in report["clusters"] if c["emerging"]], report["bursts"]


def test_a_signals_only_campaign_bursts_as_a_combination(policy):
    """Without text, a campaign from an unusual mix of signals (a surface and a country that
    rarely meet) at 8% of a day: the pair bursts though neither value alone is rare."""
    raw = policy.model_dump()
    raw["fields"]["text"] = []
    signals = Policy.model_validate(raw)
    log, reference, _, until = _world(signals, 0, None)
    day = pd.to_datetime(log["scored_at"], utc=True).dt.floor("D") == (
        until - pd.Timedelta(days=2)
    ).floor("D")
    rows = np.flatnonzero(day.to_numpy())[:40]
    log = log.copy()
    log.iloc[rows, log.columns.get_loc("surface")] = "dm"
    log.iloc[rows, log.columns.get_loc("country")] = "DE"
    report = emerging_risk(log, reference, signals, until - pd.Timedelta(days=7), until)
    assert any(b["term"] == "surface = dm & country = DE" for b in report["bursts"]), report[
        "bursts"
    ][:5]
    emerging = [c for c in report["clusters"] if c["emerging"]]
    assert emerging and {"surface = dm", "country = DE"} & set(emerging[0]["top"]), emerging

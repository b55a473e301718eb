"""A policy written by someone else against the policy contract: no text, plain CSV files.

Nothing here uses the simulator: the decisions and the golden set are written by hand-rolled
code, as another team would, and go through the command line only.
"""

import mlflow
import numpy as np
import pandas as pd

from tests.conftest import run_cli

POLICY = """\
name: fake_accounts
description: Accounts operated by bots or impersonators
labels: {positive: fake, negative: genuine}
fields:
  text: []
  numeric: [followers, following, posts_per_day, profile_completeness]
  categorical: [signup_channel]
targets:
  auto_action_precision: 0.9
  review_recall: 0.8
"""


def _accounts(rng, n, start, fake_rate=0.08):
    fake = rng.random(n) < fake_rate
    return pd.DataFrame(
        {
            "item_id": [f"acct-{start + i}" for i in range(n)],
            "label": np.where(fake, "fake", "genuine"),
            "followers": np.where(fake, rng.poisson(20, n), rng.poisson(300, n)),
            "following": np.where(fake, rng.poisson(2000, n), rng.poisson(250, n)),
            "posts_per_day": np.round(np.where(fake, rng.gamma(6, 5, n), rng.gamma(2, 1, n)), 2),
            "profile_completeness": np.round(
                np.where(fake, rng.beta(2, 5, n), rng.beta(5, 2, n)), 3
            ),
            "signup_channel": rng.choice(["web", "ios", "android", "api"], n),
        }
    )


def test_signals_only_policy_trains_promotes_and_serves_through_pyfunc(tmp_path):
    rng = np.random.default_rng(11)
    (tmp_path / "fake_accounts.yaml").write_text(POLICY)
    policy = str(tmp_path / "fake_accounts.yaml")
    decisions = _accounts(rng, 3000, 0)
    decisions["reviewer_id"] = rng.choice(["alice", "bob", "carol"], len(decisions))
    decisions["decided_at"] = pd.date_range(
        "2026-03-01", periods=len(decisions), freq="15min", tz="UTC"
    ).strftime("%Y-%m-%dT%H:%M:%S%z")
    decisions.to_csv(tmp_path / "decisions.csv", index=False)
    golden = _accounts(rng, 400, 100_000, fake_rate=0.25)
    golden.to_csv(tmp_path / "golden.csv", index=False)

    home = tmp_path / "home"
    run_cli("golden", "import", str(tmp_path / "golden.csv"), "--policy", policy, home=home)
    run_cli("decisions", "import", str(tmp_path / "decisions.csv"), "--policy", policy, home=home)
    run_cli("train", "--policy", policy, home=home)
    promoted = run_cli("promote", "--policy", policy, home=home)
    assert "verdict: promoted" in promoted.stdout

    store = f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)  # an earlier in-process client may have pinned another one
    model = mlflow.pyfunc.load_model("models:/fake_accounts@champion")
    features = golden.drop(columns=["item_id", "label"]).astype(
        {c: float for c in ("followers", "following")}
    )
    probabilities = np.asarray(model.predict(features))
    assert probabilities.shape == (len(golden), 2)
    fake = golden["label"].eq("fake").to_numpy()
    assert probabilities[fake, 1].mean() > 0.8 > 0.2 > probabilities[~fake, 1].mean()

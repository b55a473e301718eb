"""Training against a real MLflow registry (SQLite in the test's home)."""

import math

import mlflow
import numpy as np

from flywheel.lake import Lake
from flywheel.registry import CHALLENGER, CHAMPION, connect, get_version
from flywheel.runtime import load_model
from training.train import train


def test_version_carries_design_tags_and_aliases(trained, spam):
    settings, result, verdict = trained
    client = connect(settings)
    ref = get_version(client, "spam", CHAMPION)
    assert ref.version == result.model.version == 1
    assert verdict.promoted
    assert set(ref.aliases) == {CHAMPION, CHALLENGER}
    tags = ref.tags
    assert tags["dataset_version"] == result.dataset.version
    thresholds = ref.thresholds
    assert 0 < thresholds.review <= 1 and thresholds.review <= thresholds.auto_action
    # the thresholds' evidence: the rule, n, the bounds and the staffing cost
    assert tags["threshold_confidence"] == "0.95"
    assert int(tags["threshold_positives"]) > 100
    assert float(tags["review_recall_bound"]) >= spam.targets.review_recall
    assert 0 < float(tags["expected_review_share"]) < 1
    if math.isinf(thresholds.auto_action):  # off: the tags say why, and no golden precision
        assert tags["threshold_notes"].startswith("auto-action off")
        assert tags["auto_action_precision_bound"] == "none"
    else:
        assert float(tags["auto_action_precision_bound"]) >= spam.targets.auto_action_precision
    for metric in ("recall", "fpr", "fnr"):
        for point in ("auto_action", "review"):
            assert 0 <= float(tags[f"golden_{point}_{metric}"]) <= 1
    assert float(tags["golden_roc_auc"]) > 0.9, "the simulated world is learnable"
    assert tags["promotion_verdict"] == "promoted"
    # the held-out scores the thresholds were read on reach reviewer QA through the lake
    scores = Lake(settings.lake_dir).labelled_scores("spam")
    assert len(scores) == int(tags["threshold_items"]) and scores.between(0, 1).all()
    assert scores.index.isin(result.dataset.split("train")["item_id"]).any()


def test_run_logs_dataset_inputs_and_metrics_per_slice(trained, spam):
    settings, result, _ = trained
    run = connect(settings).get_run(result.model.run_id)
    contexts = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs if i.tags}
    assert set(contexts) == {"train", "validation", "test"}
    assert contexts["train"].digest == f"{result.dataset.version}-train"
    metrics = run.data.metrics
    for name in ("test/review_recall", "test/pr_auc", "golden/ece", "golden/review_precision"):
        assert name in metrics
    for value in spam.simulation["categorical"]["surface"]["values"]:
        assert f"golden/surface/{value}/review_recall" in metrics


def test_champion_predicts_probabilities_through_pyfunc(trained, spam, small_world):
    settings, _, _ = trained
    mlflow.set_tracking_uri(settings.tracking_uri)
    items = small_world.golden[spam.feature_columns]
    probabilities = mlflow.pyfunc.load_model("models:/spam@champion").predict(items)
    probabilities = np.asarray(probabilities)
    assert probabilities.shape == (len(items), 2)
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    client = connect(settings)
    loaded = load_model(client, get_version(client, "spam", CHAMPION), spam)
    assert np.allclose(loaded.score(small_world.golden), probabilities[:, 1])


def test_the_same_training_twice_registers_nothing_new(trained, spam):
    settings, result, _ = trained
    again = train(spam, settings)
    assert again.reused and again.model.version == result.model.version
    assert len(connect(settings).search_model_versions("name = 'spam'")) == 1

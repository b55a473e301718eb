"""Models load with the project's own trust, not the artifact's (a real MLflow registry).

Whoever can write the artifact store writes a model's MLmodel file too: its skops trust list and
its serialisation format are theirs. MLflow's loader follows both; Flywheel's does not.
"""

import operator

import mlflow
import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from flywheel.errors import FlywheelError
from flywheel.registry import Thresholds, connect, get_version
from flywheel.runtime import load_model
from flywheel.settings import Settings

FIELDS = ["links"]


def _register(settings: Settings, pipeline: Pipeline, name: str, **log_options):
    """Log and register a pipeline as a policy's version 1, with thresholds."""
    client = connect(settings)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(sk_model=pipeline, name="model", **log_options)
    client.create_registered_model(name)
    client.create_model_version(
        name, info.model_uri, run_id=info.run_id, tags=Thresholds(0.9, 0.5).as_tags()
    )
    return client, get_version(client, name, 1)


def _fitted(pipeline: Pipeline) -> Pipeline:
    frame = pd.DataFrame({"links": [0.0, 1.0, 4.0, 6.0]})
    return pipeline.fit(frame, [0, 0, 1, 1])


def test_a_trust_list_widened_in_the_artifact_is_not_followed(home, spam):
    settings = Settings(home=home)
    # a function skops does not trust by default (here a harmless one), trusted by the
    # artifact's own MLmodel file
    pipeline = _fitted(
        Pipeline([("f", FunctionTransformer(operator.neg)), ("c", LogisticRegression())])
    )
    widened = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))
    assert widened
    client, ref = _register(
        settings, pipeline, "widened", serialization_format="skops", skops_trusted_types=widened
    )
    assert mlflow.sklearn.load_model(ref.uri) is not None  # MLflow follows the artifact
    with pytest.raises(FlywheelError, match=f"cannot load {ref.uri}.*{widened[0]}"):
        load_model(client, ref, spam)


def test_a_pickled_model_loads_only_when_the_setting_allows(home, spam):
    settings = Settings(home=home)
    pipeline = _fitted(Pipeline([("c", LogisticRegression())]))
    client, ref = _register(settings, pipeline, "pickled", serialization_format="cloudpickle")
    with pytest.raises(FlywheelError, match="FLYWHEEL_ALLOW_PICKLE_MODELS=true"):
        load_model(client, ref, spam)
    loaded = load_model(client, ref, spam, allow_pickle=True)
    frame = pd.DataFrame({"links": [0.0, 6.0]})
    assert np.allclose(loaded.pipeline.predict_proba(frame), pipeline.predict_proba(frame))

import pytest
import skops.io

from flywheel.registry import TRUSTED_TYPES


@pytest.mark.parametrize("calibration", ["sigmoid", "isotonic"])
def test_trusted_types_cover_what_training_builds(tiny_models, calibration):
    pipeline = tiny_models[calibration].pipeline
    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))
    assert set(untrusted) <= set(TRUSTED_TYPES)


def test_pruned_vocabulary_is_not_kept(tiny_models):
    pipeline = tiny_models["sigmoid"].pipeline
    vectorizers = [
        t for name, t, _ in pipeline["features"].transformers_ if name.startswith("text_")
    ]
    assert vectorizers and all(not hasattr(v, "stop_words_") for v in vectorizers)
    assert all(len(v.vocabulary_) > 10 for v in vectorizers)

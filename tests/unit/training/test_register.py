import pytest
import skops.io

from flywheel.registry import TRUSTED_TYPES
from training.dataset import build_dataset
from training.train import fit


@pytest.mark.parametrize("calibration", ["sigmoid", "isotonic"])
def test_trusted_types_cover_what_training_builds(stocked, spam, calibration):
    policy = spam.model_copy(
        update={
            "training": spam.training.model_copy(
                update={"calibration": calibration, "n_estimators": 20}
            )
        }
    )
    fitted = fit(policy, build_dataset(policy, stocked))
    untrusted = skops.io.get_untrusted_types(data=skops.io.dumps(fitted.pipeline))
    assert set(untrusted) <= set(TRUSTED_TYPES)


def test_pruned_vocabulary_is_not_kept(stocked, spam):
    fitted = fit(spam, build_dataset(spam, stocked))
    vectorizers = [
        t for name, t, _ in fitted.pipeline["features"].transformers_ if name.startswith("text_")
    ]
    assert vectorizers and all(not hasattr(v, "stop_words_") for v in vectorizers)
    assert all(len(v.vocabulary_) > 10 for v in vectorizers)

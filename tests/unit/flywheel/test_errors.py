"""No password or token in an error message, whatever prints it."""

import pytest

from flywheel.errors import FlywheelError, redact


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "MLflow is unreachable at http://ops:hunter2@mlflow:5000 (refused)",
            "MLflow is unreachable at http://ops:***@mlflow:5000 (refused)",
        ),
        (
            "postgresql+psycopg://flywheel:p%40ss@db/mlflow",
            "postgresql+psycopg://flywheel:***@db/mlflow",
        ),
        ("s3://bucket/x?token=abc123&region=eu", "s3://bucket/x?token=***&region=eu"),
        ("host=db user=fw password=hunter2 dbname=x", "host=db user=fw password=*** dbname=x"),
        (
            "http://mlflow:5000/api and user@example.com",
            "http://mlflow:5000/api and user@example.com",
        ),
    ],
)
def test_secrets_are_masked_and_nothing_else(text, shown):
    assert redact(text) == shown


def test_a_flywheel_error_never_carries_the_password():
    error = FlywheelError("cannot reach https://a:b@c/d")
    assert str(error) == "cannot reach https://a:***@c/d" and "b@" not in repr(error)

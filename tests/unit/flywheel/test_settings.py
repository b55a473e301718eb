from flywheel.settings import Settings


def test_artifacts_stay_in_the_home_unless_a_root_or_a_server_decides(tmp_path):
    home = tmp_path / "home"
    local = Settings(home=home)
    assert local.artifact_location("spam") == (home / "mlflow" / "artifacts" / "spam").as_uri()
    database = Settings(home=home, mlflow_tracking_uri="postgresql://u@db:5432/mlflow")
    assert database.artifact_location("spam") == local.artifact_location("spam")
    assert (
        Settings(home=home, mlflow_tracking_uri="http://mlflow:5000").artifact_location("spam")
        is None
    )
    bucket = Settings(
        home=home, mlflow_tracking_uri="http://mlflow:5000", artifact_root="s3://bucket/flywheel/"
    )
    assert bucket.artifact_location("spam") == "s3://bucket/flywheel/spam"

"""Typed settings read from the environment, in one place.

Everything that differs between a laptop, CI and a scaled-out deployment comes from here;
the rest of the code asks `get_settings()` and never reads `os.environ` itself.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Flywheel's configuration; `FLYWHEEL_*` variables, plus the usual MLflow one."""

    model_config = SettingsConfigDict(env_prefix="FLYWHEEL_", extra="ignore", populate_by_name=True)

    home: Path = Field(default=Path(".flywheel"), description="Root of the lake and local stores.")
    policies_dir: Path = Field(
        default=REPO_ROOT / "policies",
        description="Where `--policy NAME` is looked up.",
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "FLYWHEEL_MLFLOW_TRACKING_URI"),
        description="MLflow tracking and registry; default: SQLite inside the home.",
    )
    mlflow_connect_timeout_s: float = Field(default=5.0, gt=0)
    artifact_root: str = Field(
        default="",
        validation_alias=AliasChoices("FLYWHEEL_ARTIFACT_ROOT"),
        description="Where experiments Flywheel creates keep their models, e.g. s3://bucket/flywheel; "
        "default: inside the home, or the tracking server's own root when MLflow is a server.",
    )

    # the scoring API (`flywheel serve`)
    api_keys_csv: str = Field(
        default="",
        validation_alias=AliasChoices("FLYWHEEL_API_KEYS"),
        description="Comma-separated bearer keys accepted by the scoring routes.",
    )
    admin_key: str = Field(
        default="", description="Bearer key for /v1/admin routes; unset: disabled."
    )
    serve_policies_csv: str = Field(
        default="",
        validation_alias=AliasChoices("FLYWHEEL_SERVE_POLICIES"),
        description="Comma-separated policies to serve; default: every policy in the policies folder.",
    )
    poll_interval_s: float = Field(default=30.0, gt=0, description="How often aliases are checked.")
    allow_pickle_models: bool = Field(
        default=False,
        description="Load model versions saved with pickle, which runs code from the artifact "
        "store as they load (skops models load with the project's own trust list).",
    )
    max_batch_items: int = Field(default=1000, ge=1)
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    max_text_chars: int = Field(
        default=100_000, ge=100, description="Longest text field an item to score may have."
    )
    log_segment_records: int = Field(
        default=50_000, ge=1, description="Prediction-log records per segment before it rolls."
    )
    log_segment_seconds: float = Field(
        default=300.0, gt=0, description="Age at which a prediction-log segment rolls."
    )
    log_fsync: bool = Field(
        default=False,
        description="fsync each log write: survives a machine crash, not only a killed server.",
    )

    # Label Studio (`flywheel labelstudio`, `flywheel label`)
    labelstudio_url: str = Field(
        default="http://127.0.0.1:8089",
        validation_alias=AliasChoices("LABEL_STUDIO_URL", "FLYWHEEL_LABELSTUDIO_URL"),
        description="Label Studio's address; `flywheel labelstudio start` serves it when local.",
    )
    labelstudio_api_key: str = Field(
        default="",
        validation_alias=AliasChoices("LABEL_STUDIO_API_KEY", "FLYWHEEL_LABELSTUDIO_API_KEY"),
        description="Admin API token; default: generated at first start and kept in the home.",
    )
    labelstudio_username: str = Field(
        default="admin@flywheel.local", description="Admin user created at first start."
    )
    labelstudio_venv: Path = Field(
        default=Path("~/.cache/flywheel/label-studio-1.23"),
        description="Label Studio's own virtualenv, installed on first start, shared by homes.",
    )
    labelstudio_start_timeout_s: float = Field(default=180.0, gt=0)
    labelstudio_retries: int = Field(
        default=4, ge=0, description="Retries with backoff when Label Studio is unreachable."
    )
    labelstudio_page_size: int = Field(default=1000, ge=10, le=10_000)
    webhook_url: str = Field(
        default="",
        description="Where Label Studio posts annotation events (`flywheel label listen`).",
    )
    webhook_secret: str = Field(
        default="",
        description="The secret Label Studio's webhooks carry and the receiver requires; unset: "
        "generated once for this home.",
    )
    labelstudio_webhook_hosts: str = Field(
        default="127.0.0.1",
        description="Comma-separated addresses in reserved networks that Label Studio may still "
        "reach (the webhook receiver's); every other reserved network stays refused.",
    )

    # the operations console (`flywheel console`)
    console_key: str = Field(
        default="",
        description="The key a browser signs in to the console with; unset: generated once for "
        "this home and kept in it.",
    )
    console_mlflow_url: str = Field(
        default="",
        description="MLflow's web UI, for the console's links to model versions; default: the "
        "tracking server when MLflow is one.",
    )

    alert_webhook_url: str = Field(
        default="", description="Slack-compatible webhook for monitoring alerts; unset: none."
    )

    @property
    def api_keys(self) -> frozenset[str]:
        return frozenset(k.strip() for k in self.api_keys_csv.split(",") if k.strip())

    @property
    def serve_policies(self) -> list[str]:
        return [p.strip() for p in self.serve_policies_csv.split(",") if p.strip()]

    @property
    def root(self) -> Path:
        """The home as an absolute path, so that a later `chdir` cannot move the lake."""
        return self.home.expanduser().resolve()

    @property
    def lake_dir(self) -> Path:
        return self.root / "lake"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.root / 'mlflow' / 'mlflow.db'}"

    @property
    def labelstudio_dir(self) -> Path:
        """Label Studio's data, pid file, log and generated credentials for this home."""
        return self.root / "labelstudio"

    @property
    def artifacts_dir(self) -> Path:
        """Artifact root in the home, for experiments Flywheel creates on a database store."""
        return self.root / "mlflow" / "artifacts"

    def artifact_location(self, policy: str) -> str | None:
        """Where a new experiment keeps its artifacts; None lets an MLflow server decide. A
        database store (SQLite, PostgreSQL) without a root would write them under the working
        directory, wherever a command happened to run."""
        if self.artifact_root:
            return f"{self.artifact_root.rstrip('/')}/{policy}"
        if self.tracking_uri.startswith(("http://", "https://", "databricks")):
            return None
        return (self.artifacts_dir / policy).as_uri()


def get_settings() -> Settings:
    """Settings as the environment says now (cheap; tests change the environment freely)."""
    return Settings()

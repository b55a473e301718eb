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

    model_config = SettingsConfigDict(env_prefix="FLYWHEEL_", extra="ignore")

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
    def artifacts_dir(self) -> Path:
        """Artifact root for experiments Flywheel creates when MLflow is the local default."""
        return self.root / "mlflow" / "artifacts"


def get_settings() -> Settings:
    """Settings as the environment says now (cheap; tests change the environment freely)."""
    return Settings()

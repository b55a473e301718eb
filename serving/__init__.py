"""The scoring API: models from the MLflow registry, decisions from their thresholds."""

"""Runtime tests embed for real, so they share the pipeline tests' tiny encoders."""

from tests.pipelines.conftest import tiny_encoders, tiny_models  # noqa: F401  (fixtures)

"""The streaming test embeds a remote shard, so it shares the pipeline tests' tiny encoders."""

from tests.pipelines.conftest import tiny_encoders, tiny_models  # noqa: F401  (fixtures)

"""The fault suite shares the send-pipeline fixtures."""
from tests.pipeline.conftest import ctx  # noqa: F401  (a fixture, found by pytest here)

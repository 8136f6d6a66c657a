"""The fault suite shares the send-pipeline fixtures."""
from tests.pipeline.conftest import ctx, send_rate  # noqa: F401  (fixtures, found by pytest here)

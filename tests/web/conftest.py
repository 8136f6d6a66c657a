"""The browser fixtures of test_browser.py, for every browser test under tests/web."""
from tests.web.test_browser import browser, shots  # noqa: F401  (fixtures: pytest finds them here)

# The live server for plain HTTP that the browser tests use (the sandbox posts deliveries to it).
from tests.browser.conftest import live_server  # noqa: F401

"""Helpers of the sandbox tests: API callers as a real client makes them, the JSON schemas."""

import json
from decimal import Decimal
from functools import cache
from importlib import resources

import requests

ACTIONSTEP_MEDIA = "application/vnd.api+json"


class Api:
    """A requests session carrying the API's headers."""

    def __init__(self, base_url: str, headers: dict):
        self.base_url = base_url
        self.session = requests.Session()
        self.session.headers.update(headers)

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, f"{self.base_url}{path}", **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.call("GET", path, **kwargs)

    def put(self, path: str, body: dict, **kwargs) -> requests.Response:
        return self.call("PUT", path, data=json.dumps(body), **kwargs)

    def post(self, path: str, body: dict, **kwargs) -> requests.Response:
        return self.call("POST", path, data=json.dumps(body), **kwargs)

    def delete(self, path: str, **kwargs) -> requests.Response:
        return self.call("DELETE", path, **kwargs)


def exact(response: requests.Response):
    """The JSON body with amounts as Decimal, as a careful client reads money."""
    return json.loads(response.text, parse_float=Decimal)


@cache
def schema(name: str) -> dict:
    """One of the sandbox's own JSON schemas of Xero's answers (unlinker/sandbox/schemas/)."""
    text = resources.files("unlinker.sandbox").joinpath(f"schemas/{name}.json").read_text()
    return json.loads(text)

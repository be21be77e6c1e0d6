"""The little HTTP layer under the sandbox: a request, a response and JSON with exact money."""

import json
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from urllib.parse import parse_qs, urlencode

# Money travels through the JSON encoder as a string between NUL characters and leaves it as a
# bare number with two decimals (12.30, not 12.3 or "12.30"): the encoder writes NUL as \u0000,
# so removing the quote-and-NUL pairs unwraps every amount. NUL never occurs in other text: what
# a request sends is cleaned by `clean_text` before it is stored.
_OPEN, _CLOSE = '"\\u0000', '\\u0000"'


def money(cents: int, places: int = 2) -> str:
    """An amount of cents on the wire; `places=4` for unit amounts asked for with unitdp=4."""
    amount = Decimal(cents).scaleb(-2)
    if places != 2:
        amount = amount.quantize(Decimal(1).scaleb(-places))
    return f"\x00{amount}\x00"


def parse_bool(value: str | None, default: bool) -> bool:
    """A boolean query parameter as Xero's (.NET) binding reads it: "true" or "false" in any
    case, spaces around ignored (summarizeErrors=False is false); anything else, or nothing,
    is the default."""
    text = (value or "").strip().lower()
    return {"true": True, "false": False}.get(text, default)


def to_cents(value) -> int:
    """An amount from a request or a builder ("12.30", 12.3, Decimal) as integer cents."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")):
        raise ValueError(f"not an amount with at most two decimals: {value!r}")
    return int(amount * 100)


def clean_text(value) -> str:
    return str(value).replace("\x00", "")


def dumps(payload) -> bytes:
    text = json.dumps(payload, separators=(",", ":"))
    return text.replace(_OPEN, "").replace(_CLOSE, "").encode()


class BadRequest(Exception):
    """A request the sandbox cannot read (malformed JSON, a bad parameter)."""


class Request:
    def __init__(self, environ: dict):
        self.environ = environ
        self.method = environ["REQUEST_METHOD"].upper()
        self.path = environ.get("PATH_INFO") or "/"
        self.query_string = environ.get("QUERY_STRING", "")
        self.args = {key: values[0] for key, values in parse_qs(self.query_string).items()}
        self.notes: dict = {}  # what the request log should know beyond status (replay, tenant)
        self._body: bytes | None = None

    def header(self, name: str, default: str = "") -> str:
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            return self.environ.get(key) or default
        return self.environ.get(f"HTTP_{key}", default)

    @property
    def body(self) -> bytes:
        if self._body is None:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
            self._body = self.environ["wsgi.input"].read(length) if length > 0 else b""
        return self._body

    def json(self):
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            raise BadRequest("The request body is not valid JSON") from None

    def form(self) -> dict[str, str]:
        parsed = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {key: values[0] for key, values in parsed.items()}

    @property
    def base_url(self) -> str:
        host = self.environ.get("HTTP_HOST") or (
            f"{self.environ['SERVER_NAME']}:{self.environ['SERVER_PORT']}"
        )
        return f"{self.environ.get('wsgi.url_scheme', 'http')}://{host}"

    def url_with(self, **params) -> str:
        """This request's absolute URL with some query parameters replaced."""
        query = {**self.args, **{key: str(value) for key, value in params.items()}}
        return f"{self.base_url}{self.path}?{urlencode(query)}"


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def wsgi(self, start_response):
        status_line = f"{self.status} {HTTPStatus(self.status).phrase}"
        headers = [("Content-Length", str(len(self.body))), *self.headers.items()]
        start_response(status_line, headers)
        return [self.body]


def json_response(payload, status=200, content_type="application/json", headers=None) -> Response:
    return Response(status, dumps(payload), {"Content-Type": content_type, **(headers or {})})


def text_response(text: str, status: int, content_type="text/plain; charset=utf-8") -> Response:
    return Response(status, text.encode(), {"Content-Type": content_type})

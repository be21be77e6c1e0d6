"""OAuth2 for both APIs: a consent page, the authorization-code and refresh-token grants (and
Xero's client-credentials grant for custom connections), and bearer-token checks.

Any client id and secret are accepted and recorded with the tokens. Refresh tokens rotate: a
refresh token works once. Xero codes are bound to their PKCE challenge (S256). Xero issues a
refresh token only for the `offline_access` scope and an OpenID Connect `id_token` for
`openid`; every token of one authorisation shares a grant id, which revocation ends.
"""

import base64
import hashlib
import hmac
import html
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

from .web import Response, json_response, text_response


@dataclass(frozen=True)
class Provider:
    api: str
    title: str
    token_type: str
    refresh_ttl: int
    pkce: bool


PROVIDERS = {
    "actionstep": Provider("actionstep", "Actionstep", "bearer", 21 * 86400, pkce=False),
    "xero": Provider("xero", "Xero", "Bearer", 60 * 86400, pkce=True),
}
CODE_TTL = 600
AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
)
# What a token issued by the control API (/_sandbox/tokens) carries when no scope is named.
DEFAULT_SCOPES = {
    "actionstep": "all",
    "xero": "openid profile email offline_access accounting.transactions accounting.settings",
}


def _grant_error(error: str, status: int = 400, description: str = "") -> Response:
    body = {"error": error, **({"error_description": description} if description else {})}
    return json_response(body, status, headers={"Cache-Control": "no-store"})


class OAuth:
    def __init__(self, store, ttls: dict[str, int]):
        self.store = store
        self.ttls = ttls  # access-token lifetimes per API; /_sandbox/limits may change them

    # --- authorize ----------------------------------------------------------------------------

    def authorize(self, req, api: str) -> Response:
        provider = PROVIDERS[api]
        params = req.form() if req.method == "POST" else req.args
        problem = self._authorize_problem(provider, params)
        if problem:
            return text_response(f"{provider.title} sandbox: {problem}", 400)
        firms = self.store.conn().execute("SELECT * FROM firms ORDER BY id").fetchall()
        if req.method == "GET":
            return self._consent_page(provider, params, firms)
        firm_id = None
        if api == "actionstep":
            chosen = [f for f in firms if f["orgkey"] == params.get("org")] or firms[:1]
            if not chosen:
                return text_response("Actionstep sandbox: no organisation has been seeded", 400)
            firm_id = chosen[0]["id"]
        code = secrets.token_urlsafe(24)
        with self.store.write() as conn:
            conn.execute(
                """INSERT INTO auth_codes (code, api, firm_id, client_id, redirect_uri, scope,
                   code_challenge, expires_at, nonce) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    code,
                    api,
                    firm_id,
                    params["client_id"],
                    params["redirect_uri"],
                    params.get("scope", ""),
                    params.get("code_challenge") or None,
                    time.time() + CODE_TTL,
                    params.get("nonce") or None,
                ),
            )
        answer = {"code": code}
        if params.get("state"):
            answer["state"] = params["state"]
        if api == "xero":
            answer["scope"] = params.get("scope", "")
        uri = params["redirect_uri"]
        location = f"{uri}{'&' if '?' in uri else '?'}{urlencode(answer)}"
        return Response(302, b"", {"Location": location})

    @staticmethod
    def _authorize_problem(provider: Provider, params: dict) -> str:
        if params.get("response_type") != "code":
            return "response_type must be 'code'"
        if not params.get("client_id") or not params.get("redirect_uri"):
            return "client_id and redirect_uri are required"
        if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
            return "code_challenge_method must be S256"
        if params.get("code_challenge") and not provider.pkce:
            return "this provider does not take a code_challenge"
        return ""

    @staticmethod
    def _consent_page(provider: Provider, params: dict, firms) -> Response:
        esc = html.escape
        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{esc(params[name])}">'
            for name in AUTHORIZE_PARAMS
            if params.get(name)
        )
        if provider.api == "actionstep":
            choices = "".join(
                f'<label><input type="radio" name="org" value="{esc(f["orgkey"])}"'
                f"{' checked' if i == 0 else ''}> {esc(f['name'])} ({esc(f['orgkey'])})</label>"
                for i, f in enumerate(firms)
            )
        else:
            choices = "".join(f"<label>{esc(f['name'])}</label>" for f in firms)
        button = '<button type="submit">Allow access</button>'
        if provider.api == "actionstep" and not firms:
            choices, button = "<p>No organisation yet: seed the sandbox first.</p>", ""
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{provider.title} sandbox: allow access</title>
<link rel="icon" href="data:,">
<style>body{{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}}
main{{max-width:28rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px}}
label{{display:block;margin:.4rem 0}}button{{margin-top:1rem;padding:.6rem 1.2rem;
font-size:1rem;background:#1f6feb;color:#fff;border:0;border-radius:6px;cursor:pointer}}</style>
</head><body><main><h1>{provider.title} (sandbox)</h1>
<p><strong>{esc(params["client_id"])}</strong> asks for access to your organisation
(scopes: <code>{esc(params.get("scope", "")) or "none"}</code>).</p>
<form method="post">{hidden}{choices}{button}</form></main></body></html>"""
        return text_response(page, 200, "text/html; charset=utf-8")

    # --- token --------------------------------------------------------------------------------

    def token(self, req, api: str) -> Response:
        form = req.form()
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret")
        scheme, _, credentials = req.header("Authorization").partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials).decode()
            except ValueError:
                return _grant_error("invalid_client", 401)
            client_id, _, client_secret = decoded.partition(":")
        req.notes["client_id"] = client_id
        if not client_id:
            return _grant_error("invalid_client", 401, "client authentication is required")
        grant = form.get("grant_type")
        with self.store.write() as conn:
            if grant == "authorization_code":
                granted = self._redeem_code(conn, api, client_id, form)
            elif grant == "refresh_token":
                granted = self._rotate(conn, api, form.get("refresh_token", ""), form.get("scope"))
            elif grant == "client_credentials" and api == "xero":
                scope = form.get("scope", "")
                granted = {"firm_id": None, "scope": scope, "refresh": False, "new_grant": True}
            else:
                return _grant_error("unsupported_grant_type")
            if granted is None:
                return _grant_error("invalid_grant")
            if granted == "invalid_scope":
                return _grant_error("invalid_scope")
            body = self.issue(conn, api, client_id, client_secret, req.base_url, **granted)
        return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    @staticmethod
    def _redeem_code(conn, api: str, client_id: str, form: dict) -> dict | None:
        row = conn.execute(
            "SELECT * FROM auth_codes WHERE code = ? AND api = ?", (form.get("code", ""), api)
        ).fetchone()
        if row is None or row["used_at"] or row["expires_at"] < time.time():
            return None
        if row["client_id"] != client_id or row["redirect_uri"] != form.get("redirect_uri"):
            return None
        if row["code_challenge"]:
            verifier = form.get("code_verifier", "").encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=")
            if not verifier or digest.decode() != row["code_challenge"]:
                return None
        conn.execute("UPDATE auth_codes SET used_at = ? WHERE code = ?", (time.time(), row["code"]))
        return {
            "firm_id": row["firm_id"],
            "scope": row["scope"],
            "refresh": api == "actionstep" or "offline_access" in row["scope"].split(),
            "new_grant": True,
            "nonce": row["nonce"],
        }

    @staticmethod
    def _rotate(conn, api: str, refresh_token: str, scope: str | None):
        """The grant a refresh token continues (it works once), with the scope asked for, which
        may narrow the original one but not widen it."""
        row = conn.execute(
            "SELECT * FROM tokens WHERE token = ? AND kind = 'refresh' AND api = ?",
            (refresh_token, api),
        ).fetchone()
        if row is None or row["revoked_at"] or row["expires_at"] < time.time():
            return None
        asked = (scope or "").split()
        if asked and not set(asked) <= set(row["scope"].split()):
            return "invalid_scope"
        conn.execute(
            "UPDATE tokens SET revoked_at = ? WHERE token = ?", (time.time(), row["token"])
        )
        return {
            "firm_id": row["firm_id"],
            "scope": " ".join(asked) if asked else row["scope"],
            "refresh": True,
            "grant_id": row["grant_id"],
        }

    def issue(
        self,
        conn,
        api,
        client_id,
        client_secret,
        base_url,
        *,
        firm_id,
        scope,
        refresh,
        grant_id=None,
        new_grant=False,
        nonce=None,
    ) -> dict:
        """Store a new access token (and refresh token) and answer as the API's token endpoint.
        A new authorisation (`new_grant`) connects the app to every tenant again."""
        provider, now = PROVIDERS[api], time.time()
        grant_id = grant_id or str(uuid.uuid4())
        body = {
            "access_token": secrets.token_urlsafe(32),
            "token_type": provider.token_type,
            "expires_in": self.ttls[api],
        }
        kinds = [("access", body["access_token"], self.ttls[api])]
        if refresh:
            body["refresh_token"] = secrets.token_urlsafe(32)
            kinds.append(("refresh", body["refresh_token"], provider.refresh_ttl))
        for kind, token, ttl in kinds:
            conn.execute(
                """INSERT INTO tokens (token, kind, api, firm_id, client_id, client_secret, scope,
                   created_at, expires_at, grant_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    token,
                    kind,
                    api,
                    firm_id,
                    client_id,
                    client_secret,
                    scope,
                    now,
                    now + ttl,
                    grant_id,
                ),
            )
        if api == "actionstep":
            firm = conn.execute("SELECT orgkey FROM firms WHERE id = ?", (firm_id,)).fetchone()
            body["api_endpoint"] = f"{base_url}/actionstep/api"
            body["orgkey"] = firm["orgkey"] if firm else None
            return body
        if new_grant:
            conn.execute("DELETE FROM xero_disconnections WHERE client_id = ?", (client_id,))
        if "openid" in scope.split():
            body["id_token"] = id_token(
                issuer=f"{base_url}/xero/identity",
                client_id=client_id,
                secret=client_secret or "",
                scope=scope,
                grant_id=grant_id,
                nonce=nonce,
            )
        body["scope"] = scope
        return body

    def revoke(self, req) -> Response:
        """POST /connect/revocation (RFC 7009): `token` is a refresh token; the client
        authenticates as at the token endpoint. Xero then ends the authorisation: its tokens
        stop working and the app's connections to the tenants are removed. An unknown token is
        answered 200 too, as RFC 7009 asks."""
        if req.method != "POST":
            return text_response("Use POST", 405)
        form = req.form()
        client_id = form.get("client_id", "")
        scheme, _, credentials = req.header("Authorization").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id = base64.b64decode(credentials).decode().partition(":")[0]
            except ValueError:
                return _grant_error("invalid_client", 401)
        req.notes["client_id"] = client_id
        if not client_id:
            return _grant_error("invalid_client", 401, "client authentication is required")
        if not form.get("token"):
            return _grant_error("invalid_request", description="token is required")
        with self.store.write() as conn:
            row = conn.execute(
                "SELECT * FROM tokens WHERE token = ? AND api = 'xero'", (form["token"],)
            ).fetchone()
            if row is None:
                return Response(200)
            if row["client_id"] != client_id:
                return _grant_error("invalid_grant", description="token of another client")
            now = time.time()
            conn.execute(
                "UPDATE tokens SET revoked_at = ? WHERE grant_id = ? AND revoked_at IS NULL",
                (now, row["grant_id"]),
            )
            conn.execute(
                """INSERT OR REPLACE INTO xero_disconnections (client_id, tenant_id, at)
                   SELECT ?, tenant_id, ? FROM firms""",
                (client_id, now),
            )
        return Response(200)

    # --- checking -----------------------------------------------------------------------------

    def authenticate(self, req, api: str):
        """(the access token's row, "") or (None, why): why is "missing", "invalid" or
        "expired"."""
        scheme, _, token = req.header("Authorization").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, "missing"
        row = (
            self.store.conn()
            .execute(
                "SELECT * FROM tokens WHERE token = ? AND kind = 'access' AND api = ?",
                (token.strip(), api),
            )
            .fetchone()
        )
        if row is None or row["revoked_at"]:
            return None, "invalid"
        if row["expires_at"] <= time.time():
            return None, "expired"
        return row, ""

    def expire_access_tokens(self, api: str | None = None) -> int:
        with self.store.write() as conn:
            cursor = conn.execute(
                "UPDATE tokens SET expires_at = ? WHERE kind = 'access' AND (? IS NULL OR api = ?)",
                (time.time() - 1, api, api),
            )
        return cursor.rowcount


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def id_token(*, issuer, client_id, secret, scope, grant_id, nonce=None) -> str:
    """An OpenID Connect id_token (a JWT, HS256 with the client secret, as OIDC allows for a
    confidential client; Xero signs RS256 with its published keys)."""
    now = int(time.time())
    scopes = scope.split()
    user = str(uuid.uuid5(uuid.NAMESPACE_URL, f"xero-user/{client_id}"))
    claims = {
        "iss": issuer,
        "aud": client_id,
        "exp": now + 300,
        "iat": now,
        "nbf": now,
        "auth_time": now,
        "sub": user.replace("-", ""),
        "xero_userid": user,
        "global_session_id": grant_id.replace("-", ""),
        "sid": grant_id.replace("-", ""),
    }
    if "email" in scopes:
        claims["email"] = "accounts@example.com"
    if "profile" in scopes:
        claims.update(given_name="Sandbox", family_name="User", preferred_username="sandbox")
    if nonce:
        claims["nonce"] = nonce
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{_b64(signature.digest())}"

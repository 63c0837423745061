"""A small JSON-over-HTTP client on the standard library (the CLI needs nothing more)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


class ApiError(Exception):
    """Junction answered with an error; the message is its JSON error."""

    def __init__(self, status: int, body: bytes) -> None:
        try:
            error = json.loads(body)["error"]
            text = f"{status} {error['code']}: {error['message']}"
        except (ValueError, KeyError, TypeError):
            text = f"{status}: {body[:500].decode('utf-8', 'replace')}"
        super().__init__(text)
        self.status = status


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class HttpClient:
    def __init__(self, base_url: str, token: str | None, timeout: float = 30.0) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"the Junction URL must start with http:// or https://, not {base_url!r}")
        self.base_url = base_url
        self.token = token
        self.timeout = timeout

    def raw(self, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None) -> RawResponse:
        request = urllib.request.Request(self.base_url + path, data=body, method=method)  # noqa: S310 - http(s) checked
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - URL is the user's
                return RawResponse(response.status, dict(response.headers.items()), response.read())
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, exc.read()) from None

    def request(self, method: str, path: str, *, json_body: Any = None) -> Any:
        body = None if json_body is None else json.dumps(json_body).encode("utf-8")
        headers = {"Content-Type": "application/json"} if body is not None else {}
        response = self.raw(method, path, body=body, headers=headers)
        return json.loads(response.body) if response.body else None

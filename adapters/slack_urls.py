"""Which `response_url`s the Slack adapter may post to (issue 12, item 12).

A response_url arrives inside a signed request, but posting wherever it points would make
the bot a relay for anyone who can get a request signed (a compromised proxy, a test
secret in production). So an answer goes only to Slack's hooks origin,
`https://hooks.slack.com` on its default port, or, when `SLACK_API_URL` is set (tests, a
proxy), to that URL's exact origin: same scheme, same host, same port. Credentials in the
URL (`user@host`) are refused: Slack never sends them, and they hide the real host.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

SLACK_HOOKS_ORIGIN = ("https", "hooks.slack.com", 443)
_DEFAULT_PORTS = {"https": 443, "http": 80}


def origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, the port made explicit; None if unusable."""
    try:
        parts: SplitResult = urlsplit(url)
        port = parts.port
    except ValueError:  # a non-numeric or out-of-range port
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.username or parts.password:
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def trusted_response_url(url: str, slack_api_url: str = "") -> bool:
    """Whether the adapter may POST an answer to `url` (see the module docstring)."""
    origin = origin_of(url)
    if origin is None:
        return False
    if origin == SLACK_HOOKS_ORIGIN:
        return True
    return bool(slack_api_url) and origin == origin_of(slack_api_url)


__all__ = ["SLACK_HOOKS_ORIGIN", "origin_of", "trusted_response_url"]

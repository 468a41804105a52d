"""The control frames the server sends and the exact error texts of protocol.md §3.3.

Pure functions; safe on any thread.
"""

from __future__ import annotations

import json
from typing import Any

GREETING = "Websocket connection established."
HTTP_422_TEXT = "Failed to deserialize the JSON body into the target type"
POST_422_TEXT = f"422 Unprocessable Entity: {HTTP_422_TEXT}"


def compact_json(value: Any) -> str:
    """Serialise like the real server: no spaces, keys in insertion order."""
    return json.dumps(value, separators=(",", ":"))


def frame(channel: str, data: Any) -> dict[str, Any]:
    return {"channel": channel, "data": data}


def error_frame(text: str) -> dict[str, Any]:
    return frame("error", text)


def pong_frame() -> dict[str, Any]:
    return {"channel": "pong"}


def ack_frame(method: str, normalised: dict[str, Any]) -> dict[str, Any]:
    return frame("subscriptionResponse", {"method": method, "subscription": normalised})


def post_frame(post_id: int, response: dict[str, Any]) -> dict[str, Any]:
    return frame("post", {"id": post_id, "response": response})


def parse_error_text(raw_text: str) -> str:
    return f"Error parsing JSON into valid websocket request: {raw_text}"


def invalid_subscription_text(normalised: dict[str, Any]) -> str:
    return f"Invalid subscription {compact_json(normalised)}"


def already_subscribed_text(normalised: dict[str, Any]) -> str:
    return f"Already subscribed: {compact_json(normalised)}"


def already_unsubscribed_text(normalised: dict[str, Any]) -> str:
    return f"Already unsubscribed: {compact_json(normalised)}"


def too_many_subscriptions_text(limit: int) -> str:
    return f"Cannot subscribe to more than {limit} channels."


def too_many_users_text(limit: int) -> str:
    return f"Cannot track more than {limit} total users."


def too_many_messages_text(limit: int) -> str:
    return f"Cannot send more than {limit} messages per minute."


def too_many_posts_text(post_id: object) -> str:
    return f"too many pending post requests id={post_id}"

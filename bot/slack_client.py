"""The bot's Slack Web API client, and what the services need from Slack (user-group members)."""

from __future__ import annotations

from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.config import LoadedConfig
from services.errors import BackendUnavailable


def build_web_client(loaded: LoadedConfig) -> WebClient:
    token = loaded.secrets.slack_bot_token
    assert token is not None  # checked by missing_slack_settings before we get here
    return WebClient(
        token=token.get_secret_value(),
        base_url=loaded.slack_api_url or WebClient.BASE_URL,
        # 429s are retried after Retry-After (slack-sdk's handler); never on the ack path.
        retry_handlers=[ConnectionErrorRetryHandler(), RateLimitErrorRetryHandler(max_retry_count=2)],
        timeout=10,
    )


def group_members(client: WebClient) -> Callable[[str], list[str]]:
    """`usergroups.users.list` for the access policy's group directory (cached there)."""

    def fetch(group_id: str) -> list[str]:
        try:
            response = client.usergroups_users_list(usergroup=group_id, include_disabled=False)
        except SlackApiError as exc:
            code = exc.response.get("error", "error") if exc.response is not None else "error"
            raise BackendUnavailable("Slack", f"usergroups.users.list failed: {code}") from exc
        except OSError as exc:
            raise BackendUnavailable("Slack", "usergroups.users.list: connection failed") from exc
        return [str(u) for u in response.get("users") or []]

    return fetch

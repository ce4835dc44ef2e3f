"""The fake Bot API refuses what Telegram refuses, so the bot's tests mean something."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.fakes.telegram import ApiError, FakeBotApi, parse_html


async def call(server: FakeBotApi, method: str, **params: object) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{server.base_url}{server.token}/{method}", data={k: str(v) for k, v in params.items()}
        )


async def test_requests_are_checked_against_the_spec() -> None:
    async with FakeBotApi() as server:
        ok = await call(
            server, "sendMessage", chat_id=1, text="<b>halo</b> &amp; selamat", parse_mode="HTML"
        )
        assert ok.status_code == 200 and ok.json()["result"]["text"] == "halo & selamat"
        unknown = await call(server, "sendTelepathy", chat_id=1)
        assert unknown.status_code == 404
        missing = await call(server, "sendMessage", chat_id=1)
        assert missing.status_code == 400 and "text" in missing.json()["description"]
        extra = await call(server, "sendMessage", chat_id=1, text="x", colour="red")
        assert extra.status_code == 400 and "colour" in extra.json()["description"]
        long = await call(server, "sendMessage", chat_id=1, text="x" * 4097)
        assert long.json()["description"] == "Bad Request: message is too long"
        assert (await call(server, "sendMessage", chat_id=1, text="x" * 4096)).status_code == 200
        data = "d" * 65
        markup = json.dumps({"inline_keyboard": [[{"text": "A", "callback_data": data}]]})
        bad_button = await call(server, "sendMessage", chat_id=1, text="x", reply_markup=markup)
        assert "BUTTON_DATA_INVALID" in bad_button.json()["description"]
        wrong_token = await httpx.AsyncClient().post(f"{server.base_url}1:nope/getMe")
        assert wrong_token.status_code == 401


@pytest.mark.parametrize(
    "html",
    [
        "<div>x</div>",
        "<b>x",
        "a < b",
        "x &nbsp; y",
        "<b><i>x</b></i>",
        "</b>",
        '<span class="merah">x</span>',
        '<a hreff="x">y</a>',
    ],
)
def test_html_telegram_would_refuse(html: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_html(html)
    assert "can't parse entities" in info.value.description


def test_html_telegram_accepts() -> None:
    text = (
        '<b>a</b> <i>b</i> <code>c</code> <a href="https://x">d</a> &lt;e&gt; &quot;f&quot; '
        '<blockquote expandable>g</blockquote> <span class="tg-spoiler">h</span> &#33;'
    )
    assert parse_html(text) == 'a b c d <e> "f" g h !'


async def test_failures_and_blocking_are_injected() -> None:
    async with FakeBotApi() as server:
        server.fail_next("sendMessage", error_code=429, retry_after=5)
        flood = await call(server, "sendMessage", chat_id=1, text="x")
        assert flood.status_code == 429 and flood.json()["parameters"] == {"retry_after": 5}
        assert (await call(server, "sendMessage", chat_id=1, text="x")).status_code == 200
        server.block(2)
        blocked = await call(server, "sendMessage", chat_id=2, text="x")
        assert blocked.status_code == 403 and "blocked" in blocked.json()["description"]
        big = server.store_file(b"x", declared_size=21 * 2**20)
        too_big = await call(server, "getFile", file_id=big["file_id"])
        assert too_big.json()["description"] == "Bad Request: file is too big"

"""Webhook mode: a call without the secret token gets 403 and changes
nothing; one with it is answered only once the update is stored."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from bot.app import webhook_options
from bot.intake import Intake
from bot.models import InboxUpdate
from tests.fakes.world import running_bot


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hello(update_id: int, *, message_id: int, user_id: int, name: str) -> dict[str, Any]:
    """A stranger's "halo" as Telegram posts it to the webhook."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "date": 0,
            "chat": {"id": user_id, "type": "private"},
            "from": {"id": user_id, "is_bot": False, "first_name": name},
            "text": "halo",
        },
    }


async def test_webhook_checks_the_secret(tmp_path: Path) -> None:
    port = free_port()
    async with running_bot(
        tmp_path,
        webhook_url="https://bot.example.go.id/tg/hook",
        webhook_listen="127.0.0.1",
        webhook_port=port,
        webhook_secret="rahasia-kantor",
    ) as world:
        assert world.intake is not None
        await world.intake.stop()  # the fixture polls; switch to a webhook
        options = webhook_options(world.services.settings)
        assert options["url_path"] == "tg/hook"
        world.intake = Intake(world.app, world.services.inbox)
        await world.intake.start_webhook(options)
        try:
            hook = world.server.calls("setWebhook")[-1]
            assert hook["secret_token"] == "rahasia-kantor"
            update = hello(777, message_id=1, user_id=5, name="X")
            url = f"http://127.0.0.1:{port}/tg/hook"
            async with httpx.AsyncClient() as client:
                no_secret = await client.post(url, json=update)
                wrong = await client.post(
                    url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "salah"}
                )
                assert (no_secret.status_code, wrong.status_code) == (403, 403)
                async with world.services.db.session() as s:
                    assert (await s.exec(select(InboxUpdate))).all() == []
                right = await client.post(
                    url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "rahasia-kantor"}
                )
                assert right.status_code == 200
                # Stored before the answer: a kill now would lose nothing.
                assert await world.services.inbox.get(777) is not None
                await world.idle()
                assert "belum terdaftar" in world.server.messages(5)[-1]["text"]

                # Telegram retries a call it thinks failed: recorded, not handled again.
                answers = len(world.server.messages(5))
                retried = await client.post(
                    url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "rahasia-kantor"}
                )
                assert retried.status_code == 200
                await world.idle()
                assert len(world.server.messages(5)) == answers
                row = await world.services.inbox.get(777)
                assert row is not None and row.done_at is not None and row.duplicates == 1
        finally:
            await world.intake.stop()


async def test_a_webhook_call_not_stored_is_refused_so_telegram_calls_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database cannot take the update: 500, so Telegram keeps it and
    calls again; the second call is stored and handled."""
    port = free_port()
    async with running_bot(
        tmp_path,
        webhook_url="https://bot.example.go.id/tg/hook",
        webhook_listen="127.0.0.1",
        webhook_port=port,
        webhook_secret="rahasia-kantor",
    ) as world:
        assert world.intake is not None
        await world.intake.stop()
        world.intake = Intake(world.app, world.services.inbox)
        await world.intake.start_webhook(webhook_options(world.services.settings))
        inbox = world.services.inbox
        real_store = inbox.store
        failures = 0

        async def store_fails_once(updates: Any) -> list[int]:
            nonlocal failures
            if failures == 0:
                failures += 1
                raise OSError("disk full")
            return await real_store(updates)

        monkeypatch.setattr(inbox, "store", store_fails_once)
        update = hello(778, message_id=2, user_id=6, name="Y")
        url = f"http://127.0.0.1:{port}/tg/hook"
        headers = {"X-Telegram-Bot-Api-Secret-Token": "rahasia-kantor"}
        try:
            async with httpx.AsyncClient() as client:
                first = await client.post(url, json=update, headers=headers)
                assert first.status_code == 500
                await world.idle()
                assert world.server.messages(6) == [] and await inbox.get(778) is None
                second = await client.post(url, json=update, headers=headers)
                assert second.status_code == 200
            await world.idle()
            assert len(world.server.messages(6)) == 1
            row = await inbox.get(778)
            assert row is not None and row.done_at is not None and row.duplicates == 0
        finally:
            await world.intake.stop()

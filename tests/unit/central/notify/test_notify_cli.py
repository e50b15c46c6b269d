"""`greenguard notify test` against a loopback WeCom receiver; configuration errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.cli import main
from tests.unit.central.notify.receivers import BotReceiver, serve


def test_notify_test_sends_a_sample_and_names_bad_input(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    with serve(BotReceiver()) as rx:
        path = tmp_path / "notify.yaml"
        path.write_text(f"""
channels:
  ops:
    kind: wecom
    key: {{env: GG_TEST_WECOM_KEY}}
    url: {rx.url("/cgi-bin/webhook/send")}
""", encoding="utf-8")
        monkeypatch.setenv("GG_TEST_WECOM_KEY", "wk-1")
        assert main(["notify", "test", "--config", str(path), "--channel", "ops"]) == 0
        assert "ops: ok" in capsys.readouterr().out
        [got] = rx.received
        assert "告警通知测试" in got.body["markdown"]["content"]
        assert main(["notify", "test", "--config", str(path), "--channel", "nope"]) == 2
        assert "--channel: no such channel (configured: ops)" in capsys.readouterr().err
        monkeypatch.delenv("GG_TEST_WECOM_KEY")
        assert main(["notify", "test", "--config", str(path), "--channel", "ops"]) == 2
        err = capsys.readouterr().err
        assert "channels.ops.key: environment variable is not set" in err

"""Alarms reach people: channels, a durable delivery queue, routing and the life of an alarm.

    channels   the port (`Channel.send`) and its adapters: WeCom, DingTalk, Feishu, e-mail,
               webhook, SMS; `FakeChannel` for unit tests
    config     notify.yaml, validated with field-named errors; secrets from env or files
    queue      the SQLite file: episodes, deliveries (one per idempotency key), attempts,
               mutes and the audit trail
    notifier   alarm events in, messages out: routing, quiet hours, escalation, reminders,
               flapping, acknowledgement, retries with backoff; on an injectable clock
    routes     the API (delivery log, acknowledge, mute) and the signed acknowledgement link

Errors: configuration problems are `central.errors.ConfigError`, file problems
`central.errors.StoreError`; a channel never raises for a send (its `Answer` says ok, retry
or fail).
"""

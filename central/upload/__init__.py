"""Upload to the municipal energy platform (市级能耗平台; STANDARDS.md §4, issue 16).

    city       one YAML per city: framing, period, encryption, ids, item tree (`CityConfig`)
    items      which meters make which 分项 item of which building (pure)
    state      the durable cursor, accepted digests and the upload log (one SQLite file)
    client     the `PlatformClient` port and its TCP adapter (`TcpPlatformClient`)
    uploader   the loop: due periods oldest first, rate-limited, re-sends of changed periods
    cli        `greenguard upload` (the uploader as its own process)

The wire protocol itself is `protocols.platform`; this package reads interval sums through
a `central.reader.TenantReader` and never writes to the store.
"""

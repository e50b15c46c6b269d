"""The central aggregator: ingest, store, compliance, API and the built-in page.

    config      institution YAML and process settings, validated before any I/O
    profile     standard-coal coefficient profiles (data files under profiles/)
    store       SQLite: records, stream watermarks, edge state, dead letters
    triage      what to do with one uplink message (pure)
    ingest      MQTT → triage → store → ack, counters, reconnect
    compliance  the figures the institution is scored on (pure)
    overview    live figures for the page; page renders them; api serves them
    service     ingest + HTTP in one TaskGroup; cli is `greenguard central`
"""

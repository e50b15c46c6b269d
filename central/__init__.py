"""The central aggregator: ingest, store, compliance, API and the built-in page.

    config      institution YAML and process settings, validated before any I/O
    profile     standard-coal coefficient profiles (data files under profiles/)
    store       SQLite: records, stream watermarks, edge state, dead letters
    triage      what to do with one uplink message (pure)
    ingest      MQTT → triage → store → ack, counters, reconnect
    compliance  the figures the institution is scored on (pure)
    period      Period: local day / month / quarter / year windows of one time zone
    projection  the one year-end projection and its minimum of data (pure)
    coverage    what a figure rests on: days with data, meters reporting, bills (pure)
    figures     the view models of period figures; formulas computes them (pure);
                metrics assembles them from the store and ledger ports
    reports     every report's figures once, drawn as HTML, PDF (report_pdf), XLSX
    overview    live figures for the page; page renders them; api serves them
    service     ingest + HTTP in one TaskGroup; cli is `greenguard central`
"""

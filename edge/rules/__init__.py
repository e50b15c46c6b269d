"""Local rules that enforce the conservation policy: calendar, pure rules and `evaluate`,
the arbiter, the actuator, persisted overrides and central commands.

    calendar.py   working days (holidays.China + overrides), hours per institution and zone,
                  terms and vacations; the fallback state for years without a schedule
    model.py      what rules see (`SiteState`) and say (`Proposal`, `Alarm`, `Notice`)
    builtin.py    the built-in rules, registered by `type` in `registry.py`
    registry.py   rule types by name; `register` for custom rules
    config.py     the `rules:` section of the edge config
    engine.py     `evaluate(rules, state, now, calendar)`: pure
    arbiter.py    protected > override > rule; minimum on/off times, rate limit, limits
    overrides.py  SQLite store of overrides and executed command ids
    commands.py   central commands and CLI overrides: validation, at most once per id
    runtime.py    the agent's tick: observe, evaluate, arbitrate, actuate, audit
"""

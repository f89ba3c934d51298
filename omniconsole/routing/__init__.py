"""Routing (issue #18): business calendars (`omniconsole.calendar`, pure so connectors may use
it), operator status, queues and assignment by capacity and skills.

    settings.py   `[routing]`, `[[queues]]`, `[[calendars]]` of the config, checked at load
    engine.py     the decisions: queue, operator, return timer, offline grace (inside a transaction)
    service.py    what the core runs: the pipeline step, the scheduler's handlers, the follower
                  that serves the queues when capacity frees, and dead-window detection

Its SQL lives in `omniconsole/store/routing.py`.
"""

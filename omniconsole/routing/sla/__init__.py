"""SLA clocks (issue #19, the SLA part): `[[sla]]` policies, each target's due time kept on the
conversation, warnings and breaches recorded once per target instance, and the escalation ladder.

    settings.py   `[[sla]]` of the config, checked at load with one-line errors naming the policy
    clocks.py     pure: which policy applies, and each target's instance, pauses and due time from
                  one conversation's history (METRICS.md's human reply and customer message)
    engine.py     what the core runs: the pipeline step, the scheduler's handler, the follower of
                  the events log that re-evaluates a conversation when operators act

Its SQL lives in `omniconsole/store/sla.py`.
"""

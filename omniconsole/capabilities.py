"""What the capability packages add to the core, built in one place for every process that runs
one (`omniconsole serve`, `omniconsole demo`, the window's embedded core).

The core imports no capability package (DESIGN.md's arrows point from them to it); whoever
builds a `Hub` hands it these: the conversation pipeline's steps in order (the bot's turn),
the extensions with their pipeline steps, schedule handlers and background tasks (rules,
then routing, then journeys' outcome table), the services that run beside them with routes on the listener (surveys), and
the jobs that must run once per database (webhook deliveries).
"""

from __future__ import annotations

from typing import Any


def hub_parts(settings, store) -> dict[str, Any]:
    """Keyword arguments for `Hub(settings, store, **hub_parts(settings, store))`."""
    from omniconsole.analytics.journey_service import outcome_table_extension
    from omniconsole.analytics.surveys import SurveyService
    from omniconsole.answers.bot_turn import conversation_pipeline
    from omniconsole.answers.bot_turn import core_extensions as bot_extensions
    from omniconsole.automation import core_extension as rules_extension
    from omniconsole.integrations.webhooks import core_services
    from omniconsole.routing.service import core_extensions, handoff_queue

    return {
        "pipeline": conversation_pipeline(settings, store, handoff_queue(settings)),
        # DESIGN's pipeline order: bot (above) -> rules -> routing.
        "extensions": [
            *bot_extensions(),
            *(e for e in (rules_extension(settings),) if e is not None),
            *core_extensions(settings),
            # journeys' outcome table, computed once here for every window's channel advice
            outcome_table_extension(settings),
        ],
        "services": [SurveyService(store, settings)],
        "jobs": core_services(settings, store),
    }

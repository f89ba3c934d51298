"""The command palette's provider: every action of the main screen, by its description."""

from __future__ import annotations

from textual.command import Hit, Hits, Provider


class ActionCommands(Provider):
    """Offers each described binding of the main screen as a command."""

    async def search(self, query: str) -> Hits:
        from omniconsole.tui.app import MainScreen

        screen = self.app.main
        matcher = self.matcher(query)
        for binding in MainScreen.BINDINGS:
            if not binding.description:
                continue
            score = matcher.match(binding.description)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(binding.description),
                    lambda action=binding.action: screen.run_action(action),
                    help=f"key: {self.app.get_key_display(binding)}",
                )

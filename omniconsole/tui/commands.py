"""The command palette's provider: every action in force on the screen the palette was opened
from, by its description, run in the namespace that binds it. It reads the live bindings
(`screen.active_bindings`, keymap applied) and knows nothing of the app or its screens."""

from __future__ import annotations

from textual.command import DiscoveryHit, Hit, Hits, Provider

from omniconsole.i18n import _


class ActionCommands(Provider):
    """Offers each described binding active on the calling screen as a command."""

    def _commands(self):
        """(description, key display, run) for each described binding, once per action."""
        seen: dict[tuple[int, str], list] = {}
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if not binding.description or binding.action == "app.command_palette":
                continue
            key = (id(active.node), binding.action)
            if key in seen:
                seen[key][1].append(self.app.get_key_display(binding))
            else:
                seen[key] = [_(binding.description), [self.app.get_key_display(binding)], active.node, binding.action]
        for description, keys, node, action in seen.values():
            yield description, " ".join(dict.fromkeys(keys)), node, action

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for description, keys, node, action in self._commands():
            score = matcher.match(description)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(description),
                    lambda action=action, node=node: self.app.run_action(action, node),
                    help=_("key: {keys}").format(keys=keys),
                )

    async def discover(self) -> Hits:
        """The palette opened with nothing typed lists the window's own actions (with their
        keys) first, not only Textual's."""
        for description, keys, node, action in self._commands():
            yield DiscoveryHit(
                description,
                lambda action=action, node=node: self.app.run_action(action, node),
                help=_("key: {keys}").format(keys=keys),
            )

"""Attachments of the selected timeline entry: saved to the operator's downloads folder
(`$OMNICONSOLE_DOWNLOADS`, default ~/omniconsole-downloads), or opened: text files in a viewer
here, other files with the desktop's viewer where there is one (a local session), else saved
and the path shown. File names come from customers: shown literally, never as markup."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from textual.app import App

from omniconsole.i18n import _
from omniconsole.store import TimelineEntry
from omniconsole.tui.text import safe

#: At most this much of a text attachment is read into the viewer (bytes).
VIEWER_LIMIT = 2_000_000


def downloads_dir() -> Path:
    return Path(os.environ.get("OMNICONSOLE_DOWNLOADS", Path.home() / "omniconsole-downloads"))


def save_attachments(app: App, entry: TimelineEntry | None, root: Path) -> None:
    """Copy the entry's downloaded attachments (stored under `root`) to the downloads folder and
    say what was saved and what was not (and why)."""
    if entry is None or not entry.attachments:
        app.notify(_("The selected message has no attachments"), severity="warning", markup=False)
        return
    target = downloads_dir()
    saved, missing = [], []
    for attachment in entry.attachments:
        if not attachment.path:
            missing.append(attachment.filename)
            continue
        try:
            target.mkdir(parents=True, exist_ok=True)
            destination = target / attachment.filename
            destination.write_bytes((root / attachment.path).read_bytes())
            saved.append(str(destination))
        except OSError as exc:
            missing.append(f"{attachment.filename} ({exc.strerror})")
    if saved:
        app.notify(_("Saved {files}").format(files=", ".join(saved)), markup=False)
    if missing:
        app.notify(_("Not saved: {files}").format(files=", ".join(missing)), severity="warning", markup=False)


async def open_attachment(app: App, entry: TimelineEntry | None, root: Path) -> None:
    """Open one of the entry's downloaded attachments (asking which when there are several)."""
    files = [a for a in (entry.attachments if entry else ()) if a.path]
    if not files:
        app.notify(_("The selected message has no downloaded attachment"), severity="warning", markup=False)
        return
    attachment = files[0]
    if len(files) > 1:
        from omniconsole.tui.screens.dialogs import ChoiceDialog

        choice = await app.push_screen_wait(ChoiceDialog(_("Open which file?"), [(str(a.id), safe(a.filename)) for a in files]))
        if choice is None:
            return
        attachment = next(a for a in files if str(a.id) == choice)
    path = root / attachment.path
    if attachment.mime_type.startswith("text/") or attachment.filename.lower().endswith((".txt", ".log", ".csv", ".json")):
        from omniconsole.tui.screens.viewer import FileViewer

        try:
            data = path.read_bytes()[:VIEWER_LIMIT]
        except OSError as exc:
            app.notify(
                _("cannot read {file}: {error}").format(file=attachment.filename, error=exc.strerror),
                severity="error",
                markup=False,
            )
            return
        app.push_screen(FileViewer(attachment.filename, data.decode("utf-8", errors="replace")))
        return
    opener = shutil.which("xdg-open")
    if opener and (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        subprocess.Popen([opener, str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        app.notify(_("Opening {file}").format(file=attachment.filename), markup=False)
    else:
        save_attachments(app, entry, root)

"""The window's other screens in Russian (issue #24): the reports screen, the wallboard and the
answers library as snapshots in 80x24 and 160x48 (new snapshots; the English ones stay as
they are), and their words, figures and notifications in Russian."""

from __future__ import annotations

from textual.widgets import DataTable, OptionList, Static

from omniconsole.i18n import current_language
from omniconsole.tui.screens.library import LibraryScreen
from tests.tui.test_answers_window import library_shop  # noqa: F401 - the fixture
from tests.tui.test_reports_screens import _reports, _wallboard
from tests.tui.test_russian_window import russian_app
from tests.tui.test_snapshots import _pause, _until


async def _library(pilot) -> None:
    await _pause(pilot)
    await pilot.press("K")
    await _until(pilot, lambda: isinstance(pilot.app.screen, LibraryScreen) and pilot.app.screen.records)
    await pilot.pause(0.2)


def test_reports_screen_in_russian_160x48(snap_compare, shop):
    assert snap_compare(russian_app(shop), terminal_size=(160, 48), run_before=_reports)


def test_reports_screen_in_russian_80x24(snap_compare, shop):
    assert snap_compare(russian_app(shop), terminal_size=(80, 24), run_before=_reports)


def test_wallboard_in_russian_160x48(snap_compare, shop):
    assert snap_compare(russian_app(shop), terminal_size=(160, 48), run_before=_wallboard)


def test_wallboard_in_russian_80x24(snap_compare, shop):
    assert snap_compare(russian_app(shop), terminal_size=(80, 24), run_before=_wallboard)


def test_library_in_russian_160x48(snap_compare, library_shop):  # noqa: F811 - the fixture
    assert snap_compare(russian_app(library_shop), terminal_size=(160, 48), run_before=_library)


def test_library_in_russian_80x24(snap_compare, library_shop):  # noqa: F811 - the fixture
    assert snap_compare(russian_app(library_shop), terminal_size=(80, 24), run_before=_library)


def _cells(table: DataTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(row)] for row in range(table.row_count)]


async def test_the_reports_screen_speaks_russian_and_counts_with_plurals(shop) -> None:
    """Title, columns, the total row and weekdays in Russian; the conversations behind the
    unattended figure are counted with the Russian plural; the hint to move is in Russian."""
    app = russian_app(shop)
    async with app.run_test(size=(160, 48)) as pilot:
        await _reports(pilot)
        screen = pilot.app.screen
        assert current_language() == "ru"
        title = str(screen.query_one("#reports-title", Static).render())
        assert title.startswith("Последние 7 дней   без группировки (итоги)")
        table = screen.query_one(DataTable)
        labels = [str(column.label) for column in table.columns.values()]
        assert labels[1:4] == ["открыто", "решено", "FRT мед."] and "без ответа" in labels
        assert _cells(table)[-1][0] == "итого"
        assert "Пн" in str(screen.query_one("#reports-heatmap", Static).render())
        await pilot.press("enter")  # on the rows' names
        await _until(pilot, lambda: any("Сначала перейдите" in str(n.message) for n in app._notifications))
        table.move_cursor(row=table.row_count - 1, column=7)  # the unattended total
        await pilot.press("enter")
        await _until(pilot, lambda: pilot.app.screen.query(OptionList))
        heading = str(pilot.app.screen.query_one("Label").render())
        assert heading == "без ответа: 3 разговора"


async def test_the_wallboard_speaks_russian(shop) -> None:
    app = russian_app(shop)
    async with app.run_test(size=(160, 48)) as pilot:
        await _wallboard(pilot)
        screen = pilot.app.screen
        tiles = str(screen.query_one("#wallboard-tiles", Static).render())
        assert " 4 открыто" in tiles and " 3 без ответа" in tiles and " 3 ничьи" in tiles and "дольше всех ждёт" in tiles
        operators = screen.query_one("#wallboard-operators", DataTable)
        assert [str(column.label) for column in operators.columns.values()] == ["оператор", "статус", "открыто", "загрузка"]
        channels = screen.query_one("#wallboard-channels", DataTable)
        assert [str(column.label) for column in channels.columns.values()] == ["сегодня по каналам", "открыто"]


async def test_the_library_speaks_russian(library_shop) -> None:  # noqa: F811 - the fixture
    app = russian_app(library_shop, role="agent")
    async with app.run_test(size=(160, 48)) as pilot:
        await _library(pilot)
        screen = pilot.app.screen
        hint = str(screen.query_one("#library-hint").render())
        assert hint.startswith("e — предложить правку")
        table = screen.query_one(DataTable)
        assert [str(column.label) for column in table.columns.values()] == [
            "id",
            "язык",
            "вид",
            "исп.",
            "правили",
            "в последний раз",
            "название",
        ]
        rows = _cells(table)
        assert {row[2] for row in rows} <= {"ответ", "статья", "скрипт"} and any(row[5] == "никогда" for row in rows)
        await pilot.press("d")  # an agent may not delete
        await _until(pilot, lambda: any("Удалить статью может только" in str(n.message) for n in app._notifications))


async def test_the_journeys_screen_speaks_russian(shop) -> None:
    from omniconsole.tui.screens.journeys import JourneysScreen

    app = russian_app(shop)
    async with app.run_test(size=(160, 48)) as pilot:
        await _pause(pilot)
        await pilot.press("J")
        await _until(pilot, lambda: isinstance(pilot.app.screen, JourneysScreen) and pilot.app.screen.report)
        await pilot.pause(0.1)
        screen = pilot.app.screen
        assert str(screen.query_one("#journeys-title", Static).render()) == "Путь клиентов по каналам"
        headline = str(screen.query_one("#journeys-headline", Static).render())
        assert "обращений" in headline and "решено с первого контакта" in headline
        outcomes = screen.query_one("#journeys-outcomes", DataTable)
        labels = [str(column.label) for column in outcomes.columns.values()]
        assert labels[:2] == ["тема", "канал"] and "95% интервал" in labels
        assert str(screen.query_one("#journeys-advice", Static).render()).startswith("Совет даётся, если в ячейке")

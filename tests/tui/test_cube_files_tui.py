"""The Cubes screen exports and imports cube files through a real Pilot: the file picker, the
passphrase prompt, the worker's progress and its report; a damaged file is a notice, not a
crash, and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, OptionList, Static

from memos_desktop.api import MemosAPI, NewMemory
from memos_desktop.config import Paths, Settings
from memos_desktop.engines.base import Embedder
from memos_desktop.store.profile import create_profile
from memos_desktop.tui.cube_picker import CubeFilePicker
from memos_desktop.tui.dialogs import ChoiceScreen, PromptScreen
from tests.conftest import PASSPHRASE
from tests.tui.conftest import AppFactory, wait_for

FILE_PW = "picnic basket"


@pytest.fixture
def travel_file(paths: Paths, embedder: Embedder, tmp_path: Path) -> Path:
    """A cube 'travel' exported from another profile of this home."""
    store = create_profile(
        paths,
        "other",
        Settings(),
        method="passphrase",
        passphrase=PASSPHRASE,
        embed_model=embedder.model_id,
        embed_dim=embedder.dim,
    )
    api = MemosAPI(store, embedder)
    api.create_cube("travel")
    api.add([NewMemory("The ferry to Hydra leaves at 7:40")], cube="travel")
    out = tmp_path / "travel.memcube"
    api.export_cube("travel", out, passphrase=FILE_PW)
    api.close()
    return out


@pytest.fixture
def other_model_file(paths: Paths, tmp_path: Path) -> Path:
    """A cube 'notes' whose vectors are of another embedding model (8 dimensions)."""
    import numpy as np

    store = create_profile(
        paths,
        "third",
        Settings(),
        method="passphrase",
        passphrase=PASSPHRASE,
        embed_model="other-model",
        embed_dim=8,
    )
    api = MemosAPI(store, None)
    cube = store.cubes.create(
        store.users.list()[0], "notes", embed_model="other-model", embed_dim=8
    )
    store.memories.add_many(
        cube, [NewMemory("The bike lock code is 0917")], np.ones((1, 8), dtype=np.float32)
    )
    out = tmp_path / "notes.memcube"
    api.export_cube("notes", out, passphrase=FILE_PW)
    api.close()
    return out


async def _answer(pilot, app, screen_type, value: str) -> None:  # type: ignore[no-untyped-def]
    await wait_for(pilot, lambda: isinstance(app.screen, screen_type))
    app.screen.query_one(Input).value = value
    await pilot.press("enter")


async def test_cubes_screen_exports_and_imports_files(
    profile,
    make_app: AppFactory,
    travel_file: Path,
    other_model_file: Path,
    tmp_path: Path,
    monkeypatch,
):
    monkeypatch.setenv("HOME", str(tmp_path))  # the picker starts in the home folder
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.session is not None)
        assert app.session is not None
        api = app.session.api
        api.add([NewMemory("My locker code is 4512")])
        await pilot.press("f4")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "CubesScreen")
        screen = app.screen
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1)

        # export the selected cube: picker -> passphrase -> worker -> report
        out = tmp_path / "mine.memcube"
        await pilot.press("x")
        await wait_for(pilot, lambda: isinstance(app.screen, CubeFilePicker))
        assert app.screen.query_one(Input).value.endswith("personal.memcube")
        await _answer(pilot, app, CubeFilePicker, str(out))
        await _answer(pilot, app, PromptScreen, FILE_PW)
        label = screen.query_one("#cube-file-label", Static)
        await wait_for(pilot, lambda: "Exported 1 memories" in str(label.render()))
        assert out.is_file() and b"locker" not in out.read_bytes()

        # import another profile's cube as a new cube
        await pilot.press("i")
        await _answer(pilot, app, CubeFilePicker, str(travel_file))
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        app.screen.query_one(OptionList).highlighted = 0  # "A new cube"
        await pilot.press("enter")
        await _answer(pilot, app, PromptScreen, FILE_PW)
        await wait_for(pilot, lambda: "1 added" in str(label.render()))
        await wait_for(pilot, lambda: table.row_count == 2)
        assert sorted(c.name for c in api.list_cubes()) == ["personal", "travel"]
        assert api.search("ferry Hydra", cube="travel").hits[0].item.text.startswith("The ferry")

        # a damaged file: a notice, nothing imported
        bad = tmp_path / "bad.memcube"
        data = bytearray(travel_file.read_bytes())
        data[-30] ^= 1
        bad.write_bytes(bytes(data))
        await pilot.press("i")
        await _answer(pilot, app, CubeFilePicker, str(bad))
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        app.screen.query_one(OptionList).highlighted = 0
        await pilot.press("enter")
        await _answer(pilot, app, PromptScreen, FILE_PW)
        await wait_for(pilot, lambda: "Failed:" in str(label.render()))
        assert "integrity" in str(label.render()) or "signature" in str(label.render())
        assert len(api.list_cubes()) == 2
        assert not screen.transferring

        # a cube of another embedding model: text at once, vectors by the re-embed job
        await pilot.press("i")
        await _answer(pilot, app, CubeFilePicker, str(other_model_file))
        await wait_for(pilot, lambda: isinstance(app.screen, ChoiceScreen))
        app.screen.query_one(OptionList).highlighted = 0
        await pilot.press("enter")
        await _answer(pilot, app, PromptScreen, FILE_PW)
        await wait_for(pilot, lambda: "1 to re-embed" in str(label.render()))
        assert "Re-embed now" in str(label.render())
        screen.action_reembed()
        await wait_for(pilot, lambda: "1 memories embedded" in str(label.render()))
        hit = api.search("bike lock", cube="notes").hits[0]
        assert hit.vec_rank is not None

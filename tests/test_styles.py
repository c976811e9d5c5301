"""Named styles: the ten built-in paintings and the user's own folder, usable anywhere a
style image is (stylize, blends, video, grid, the Python API)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from a2k_cli.cli import app
from a2k_cli.styles import StyleNotFoundError, builtin_styles, named_styles, resolve_style

runner = CliRunner()


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("A2K_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_the_ten_paintings_ship_named_with_their_titles_and_small():
    styles = builtin_styles()
    assert len(styles) == 10
    night = styles["starry-night"]
    assert (night.title, night.artist, night.date) == (
        "The Starry Night",
        "Vincent van Gogh",
        "1889",
    )
    assert all(s.title != s.name and s.artist and s.date for s in styles.values())
    for s in styles.values():
        assert max(Image.open(s.path).size) <= 768
    assert sum(s.path.stat().st_size for s in styles.values()) < 2_000_000
    assert (night.path.parent / "SOURCES.md").is_file()


def test_a_path_wins_then_user_styles_then_builtins(tmp_path, home, monkeypatch):
    assert resolve_style("great-wave") == builtin_styles()["great-wave"].path
    (home / "styles").mkdir(parents=True)
    Image.new("RGB", (32, 32), "red").save(home / "styles" / "great-wave.png")
    Image.new("RGB", (32, 32), "blue").save(home / "styles" / "mine.jpg")
    (home / "styles" / "styles.json").write_text(json.dumps({"mine": {"title": "My own"}}))
    assert resolve_style("great-wave") == home / "styles" / "great-wave.png"
    assert named_styles()["mine"].title == "My own" and not named_styles()["mine"].builtin
    monkeypatch.chdir(tmp_path)
    Image.new("RGB", (32, 32)).save(tmp_path / "great-wave", format="PNG")
    assert resolve_style("great-wave").resolve() == (tmp_path / "great-wave").resolve()
    with pytest.raises(StyleNotFoundError, match="a2k styles"):
        resolve_style("no-such-style")


def test_styles_command_lists_titles_and_the_user_folder(home):
    result = runner.invoke(app, ["styles", "--json"])
    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert listed["user_folder"] == str(home / "styles")
    assert {s["name"] for s in listed["styles"]} == set(builtin_styles())
    table = runner.invoke(app, ["styles"]).stdout
    assert "Hokusai" in table and "starry-night" in table


def test_stylize_by_name_and_blend_of_names(tmp_path, tiny_weights, home, picture):
    photo = tmp_path / "photo.png"
    picture(56, 40).save(photo)
    common = ["--model", str(tiny_weights), "--size", "64", "--style-size", "64", "-o"]
    one = runner.invoke(app, ["stylize", str(photo), "-s", "starry-night", *common, str(tmp_path)])
    assert one.exit_code == 0, one.output
    assert (tmp_path / "photo_starry-night.png").is_file()
    blend = ["-s", "great-wave", "-s", "the-scream", "-w", "1", "-w", "3"]
    two = runner.invoke(app, ["stylize", str(photo), *blend, *common, str(tmp_path)])
    assert two.exit_code == 0, two.output
    unknown = runner.invoke(app, ["stylize", str(photo), "-s", "nope", *common, str(tmp_path)])
    assert unknown.exit_code == 1 and "style: nope: no such file or style name" in unknown.stderr


def test_the_python_api_takes_names_and_numpy_arrays(tiny_weights, picture):
    from a2k_cli import Stylizer

    stylizer = Stylizer(str(tiny_weights), device="cpu")
    content = np.array(picture(64, 48, seed=1))
    by_name = stylizer.stylize(content, "water-lilies", size=64, style_size=64)
    assert by_name.size == (64, 48)
    painting = np.asarray(Image.open(builtin_styles()["water-lilies"].path), np.float32) / 255
    by_array = stylizer.stylize(content.astype(np.float32) / 255, painting, size=64, style_size=64)
    difference = np.abs(np.asarray(by_name, int) - np.asarray(by_array, int))
    assert difference.mean() < 2  # the same painting, given as a file or as an array
    with pytest.raises(ValueError, match="not an image"):
        stylizer.stylize(np.zeros((4, 4, 4, 4)), "water-lilies")

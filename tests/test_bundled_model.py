"""The bundled model itself, judged by the network-free measures on the example photos and
the built-in styles (slow: paints 12 pictures with the real weights; `make test-slow`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from a2k_cli.styles import builtin_styles

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ("lighthouse", "parrots", "red-barn")
STYLES = ("great-wave", "starry-night", "the-scream", "composition-vii")


@pytest.fixture(scope="module")
def painted():
    from a2k_cli.engine import Stylizer
    from a2k_cli.imaging import read_image, resize_longer_side, to_tensor

    stylizer = Stylizer("lite", device="cpu")
    results = []
    for photo in PHOTOS:
        content = read_image(ROOT / "examples" / "photos" / f"{photo}.jpg").rgb
        for style in STYLES:
            painting = read_image(builtin_styles()[style].path).rgb
            out = stylizer.stylize(content, painting, size=512)
            c = content.resize(out.size)
            s = resize_longer_side(painting, 512)
            results.append((photo, style, to_tensor(c), to_tensor(s), to_tensor(out)))
    return results


def test_outputs_move_to_the_painting_and_keep_the_photo(painted):
    from a2k_cli.measures import edge_correlation, palette_distance

    for photo, style, content, painting, output in painted:
        before, after = palette_distance(content, painting), palette_distance(output, painting)
        assert after < 0.75 * before, (photo, style, before, after)
        assert edge_correlation(content, output) > 0.5, (photo, style)


def test_no_2px_lattice(painted):
    from a2k_cli.measures import lattice_ratio

    for photo, style, _, _, output in painted:
        assert lattice_ratio(output, 2) < 1.05, (photo, style, lattice_ratio(output, 2))

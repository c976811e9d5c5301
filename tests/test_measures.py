"""The network-free measures on inputs whose answers are known by construction."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from a2k_cli import measures as m


def smooth_image(seed: int, size: int = 128) -> torch.Tensor:
    """A smooth random colour image (a coarse random field, bilinearly enlarged)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, size // 16, size // 16, generator=generator)
    return F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=True)[0]


def test_lab_of_known_colours():
    white, black = torch.ones(3, 1, 1), torch.zeros(3, 1, 1)
    assert m.rgb_to_lab(white).flatten().tolist() == pytest.approx([100, 0, 0], abs=0.01)
    assert m.rgb_to_lab(black).flatten().tolist() == pytest.approx([0, 0, 0], abs=1e-6)
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)  # sRGB red: L 53.2, a 80.1, b 67.2
    assert m.rgb_to_lab(red).flatten().tolist() == pytest.approx([53.24, 80.09, 67.20], abs=0.1)


def test_palette_distance_is_zero_for_itself_and_reads_a_uniform_shift_in_delta_e():
    image = smooth_image(0)
    assert m.palette_distance(image, image) == 0.0
    # two flat colours: every pixel differs by the same Lab vector, so W1 = its length
    grey, lighter = torch.full((3, 32, 32), 0.4), torch.full((3, 48, 40), 0.6)
    delta_e = float((m.rgb_to_lab(grey)[:, 0, 0] - m.rgb_to_lab(lighter)[:, 0, 0]).norm())
    assert m.palette_distance(grey, lighter) == pytest.approx(delta_e, rel=0.1)


def test_palette_distance_ignores_where_colours_are():
    image = smooth_image(1)
    shuffled = image.flatten(1)[:, torch.randperm(128 * 128)].view(3, 128, 128)
    assert m.palette_distance(image, shuffled) == pytest.approx(0.0, abs=1e-9)
    assert m.palette_distance(image, smooth_image(2)) > 3


def test_texture_distance_tells_flat_from_noisy_and_ignores_colour():
    flat, noisy = (
        smooth_image(3),
        torch.rand(3, 128, 128, generator=torch.Generator().manual_seed(3)),
    )
    assert m.texture_distance(flat, flat) == 0.0
    assert m.texture_distance(flat, noisy) > 1.0
    # the same luminance pattern in another place has the same gradient statistics
    assert m.texture_distance(noisy, noisy.flip(-1)) < 0.02


def test_edge_correlation_is_one_for_the_content_and_low_for_unrelated_images():
    content = smooth_image(4)
    assert m.edge_correlation(content, content) == pytest.approx(1.0)
    assert m.edge_correlation(content, content * 0.5) > 0.95  # darker, same structure
    assert abs(m.edge_correlation(content, smooth_image(5))) < 0.3
    assert m.edge_correlation(content, torch.full_like(content, 0.5)) == 0.0
    with pytest.raises(ValueError, match="differ"):
        m.edge_correlation(content, content[:, :64])


def test_lattice_ratio_finds_a_periodic_pattern_and_no_other():
    image = smooth_image(6, 256)
    for period in m.LATTICE_PERIODS:
        assert m.lattice_ratio(image, period) == pytest.approx(1.0, abs=0.1)
    # blocks of 8 px with a step at every block boundary: period 8 sees them, period 2 too
    # (its boundaries include them), and block interiors are flat
    blocky = F.interpolate(torch.rand(1, 3, 32, 32), scale_factor=8, mode="nearest")[0]
    assert m.lattice_ratio(blocky, 8) == math.inf
    # a faint 2-px checker on a smooth image: only period 2 sees it
    checker = (torch.arange(256)[:, None] // 2 + torch.arange(256)[None] // 2) % 2
    textured = (image + 0.02 * checker).clamp(0, 1)
    assert m.lattice_ratio(textured, 2) > 1.5
    assert m.lattice_ratio(textured, 16) == pytest.approx(1.0, abs=0.1)
    with pytest.raises(ValueError, match="even"):
        m.lattice_ratio(image, 3)

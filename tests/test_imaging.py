"""Safe image reading and writing: modes, orientation, alpha rule, bad files, naming."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from a2k_cli import imaging
from a2k_cli.contact_sheet import contact_sheet
from a2k_cli.imaging import ImageError, header_size, output_name, read_image, write_image


@pytest.mark.parametrize("mode", ["CMYK", "P", "L", "LA", "RGBA", "1"])
def test_modes_become_rgb_with_alpha_only_when_present(tmp_path, mode, picture):
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    picture(40, 30).convert(mode).save(path)
    loaded = read_image(path)
    assert loaded.rgb.mode == "RGB" and loaded.rgb.size == (40, 30)
    assert (loaded.alpha is not None) == (mode in ("LA", "RGBA"))


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    wide = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    Image.fromarray(wide).save(tmp_path / "deep.png")
    rgb = np.asarray(read_image(tmp_path / "deep.png").rgb)
    assert rgb.min() == 0 and rgb.max() == 255
    assert abs(int(rgb[16, 0, 0]) - round(wide[16, 0] / 257)) <= 1


def test_exif_rotation_is_applied(tmp_path, picture):
    image = picture(60, 30)
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    image.save(tmp_path / "phone.jpg", exif=exif)
    assert read_image(tmp_path / "phone.jpg").rgb.size == (30, 60)
    assert header_size(tmp_path / "phone.jpg") == (30, 60)  # what batching plans with


def test_palette_transparency_counts_as_alpha(tmp_path, picture):
    image = picture(32, 32).convert("P")
    image.save(tmp_path / "t.png", transparency=0)
    assert read_image(tmp_path / "t.png").alpha is not None


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("hello, not an image"), "not an image"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, make, message):
    path = tmp_path / "bad.jpg"
    make(path)
    with pytest.raises(ImageError, match=message) as info:
        read_image(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_truncated_jpeg(tmp_path, picture):
    picture(64, 64).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cannot decode"):
        read_image(tmp_path / "cut.jpg")


def test_unknown_extension_and_tiny_image(tmp_path, picture):
    picture(32, 32).save(tmp_path / "x.png")
    (tmp_path / "x.png").rename(tmp_path / "x.xyz")
    with pytest.raises(ImageError, match="unsupported extension"):
        read_image(tmp_path / "x.xyz")
    picture(10, 40).save(tmp_path / "tiny.png")
    with pytest.raises(ImageError, match="too small"):
        read_image(tmp_path / "tiny.png")


def test_decompression_bomb_is_refused_before_decoding(
    tmp_path, monkeypatch, picture, huge_png_header
):
    huge_png_header(tmp_path / "bomb.png", 100_000, 100_000)
    with pytest.raises(ImageError, match="too large"):
        read_image(tmp_path / "bomb.png")
    picture(64, 64).save(tmp_path / "ok.png")
    monkeypatch.setattr(imaging, "MAX_PIXELS", 1000)
    with pytest.raises(ImageError, match="too large"):
        read_image(tmp_path / "ok.png")


@pytest.mark.parametrize("suffix, keeps_alpha", [(".png", True), (".webp", True), (".jpg", False)])
def test_alpha_rule_on_write(tmp_path, suffix, keeps_alpha, picture):
    alpha = Image.new("L", (20, 10), 0)
    alpha.paste(255, (0, 0, 10, 10))
    path = write_image(picture(40, 20), tmp_path / f"out{suffix}", alpha=alpha)  # alpha resized
    with Image.open(path) as im:
        assert im.size == (40, 20)
        assert ("A" in im.getbands()) == keeps_alpha
        if keeps_alpha:
            assert im.getchannel("A").getextrema() == (0, 255)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
@pytest.mark.parametrize("size", [(1, 1), (7, 1), (1, 5), (517, 333)])
def test_png_writer_is_lossless(tmp_path, mode, size, picture):
    """The own PNG encoder: any decoder gets back exactly the pixels, at any size."""
    image = picture(*size, seed=size[0], mode=mode)
    path = write_image(image, tmp_path / "x.png")
    with Image.open(path) as back:
        assert back.format == "PNG" and back.mode == mode and back.size == size
        assert np.array_equal(np.asarray(back), np.asarray(image))


def test_output_name_rule():
    assert output_name("a/photo.jpg", "b/starry.png", "png") == "photo_starry.png"
    assert output_name("photo.jpg", ["s1.jpg", "s2.jpg"], "jpeg") == "photo_s1+s2.jpg"
    with pytest.raises(ImageError, match="unknown output format"):
        output_name("a.jpg", "b.jpg", "gif")


def test_contact_sheet_layout(picture):
    thumbs = [picture(30, 20, seed=i) for i in range(3)]
    sheet = contact_sheet(
        [("c0.jpg", thumbs[0]), ("bad.jpg", None)],
        [("s0.jpg", thumbs[1]), ("s1.jpg", thumbs[2]), ("s2.jpg", thumbs[0])],
        [[thumbs[0], None, thumbs[1]], [None, None, None]],
        tile=48,
    )
    assert sheet.width == 4 + 4 * 52  # a label column plus three style columns
    assert sheet.height > 3 * 52  # a label band plus header and two content rows


def test_blend_names_carry_their_weights_unless_equal():
    assert output_name("p.jpg", ["a.jpg", "b.jpg"], "png", [1, 3]) == "p_a@0.25+b@0.75.png"
    assert output_name("p.jpg", ["a.jpg", "b.jpg"], "png", [2, 2]) == "p_a+b.png"


def test_outputs_are_tagged_so_folders_leave_them_out(tmp_path):
    from a2k_cli.imaging import made_by_a2k, write_image

    image = Image.new("RGB", (32, 32), "red")
    for suffix in (".png", ".jpg", ".webp"):
        write_image(image, tmp_path / f"made{suffix}")
        image.save(tmp_path / f"other{suffix}")
        assert made_by_a2k(tmp_path / f"made{suffix}")
        assert not made_by_a2k(tmp_path / f"other{suffix}")


def test_the_size_limit_holds_when_an_application_turned_pillows_off(
    tmp_path, monkeypatch, huge_png_header
):
    from PIL import Image

    from a2k_cli.imaging import ImageError, read_image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)  # Pillow's documented "no check"
    header = tmp_path / "huge.png"
    huge_png_header(header, 17000, 16384)
    with pytest.raises(ImageError, match="too large"):
        read_image(header)

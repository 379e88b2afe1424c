"""`explainer cover` (exact sizes, letterbox without cropping, the finished picture by default) and `explainer
render` (size, codec, light theme, parallel sections joined into the serial render's frames)."""

from __future__ import annotations

import hashlib

import av
import numpy as np
import pytest
from PIL import Image

from fixture_scene import FIXTURE_SCENE, expected_section_seconds
from scripts.export.cover import letterbox
from shared.theme import DARK, LIGHT

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("export-cover")]  # one worker renders the covers


def rgb(hex_colour):
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])


@pytest.fixture(scope="session")
def covers(cli, media):
    out = media / "covers"
    result = cli("cover", FIXTURE_SCENE, "--section", "旋转", "--at", "1.0", "--out", out)
    assert result.exit_code == 0, result.output
    return out


def test_cover_sizes(covers):
    assert Image.open(covers / "export_fixture-cover-9x16.png").size == (1080, 1920)
    assert Image.open(covers / "export_fixture-cover-16x10.png").size == (1146, 717)


def test_landscape_cover_is_letterboxed_not_cropped(covers):
    pixels = np.asarray(Image.open(covers / "export_fixture-cover-16x10.png").convert("RGB")).astype(int)
    band = (717 - round(1146 * 9 / 16)) // 2  # 16:9 at 1146 px is 645 rows: 36 rows above and below
    background = rgb(DARK.background)
    assert np.all(pixels[:band] == background) and np.all(pixels[-band:] == background)
    content = pixels[band:-band]
    assert np.any(np.abs(content - background).sum(axis=2) > 60)  # the scene is there


def test_default_cover_shows_the_finished_picture(cli, media):
    """Section 3 ends by fading everything out; its default cover is the picture before the fade, not the empty
    last frame."""
    out = media / "covers-default"
    result = cli("cover", FIXTURE_SCENE, "--section", "3", "--out", out)
    assert result.exit_code == 0, result.output
    background = rgb(DARK.background)
    for name in ("9x16", "16x10"):
        pixels = np.asarray(Image.open(out / f"export_fixture-cover-{name}.png").convert("RGB")).astype(int)
        assert (np.abs(pixels - background).max(axis=2) > 40).mean() > 0.005, f"{name} cover is an empty stage"


def test_no_cover_is_written_unless_both_render(covers, tmp_path, monkeypatch):
    """If the second (16:10) render fails, the 9:16 cover is not left behind beside an older 16:10 one."""
    import scripts.export.render
    from scripts.export import ExportError
    from scripts.export.cover import make_covers

    real_render, calls = scripts.export.render.render, []

    def failing_second(*args, **kwargs):
        calls.append(args[0].aspect)
        if len(calls) == 2:
            raise ExportError("the 16:9 render failed")
        return real_render(*args, **kwargs)

    monkeypatch.setattr(scripts.export.render, "render", failing_second)
    with pytest.raises(ExportError, match="16:9 render failed"):
        make_covers(str(FIXTURE_SCENE), section="旋转", at=1.0, out_dir=tmp_path)
    assert calls == ["9:16", "16:9"] and list(tmp_path.iterdir()) == []


def test_cover_time_outside_section(cli, media, tmp_path):
    result = cli("cover", FIXTURE_SCENE, "--section", "2", "--at", "9", "--out", tmp_path)
    assert result.exit_code != 0 and "lasts 1.50 s" in result.output
    assert list(tmp_path.iterdir()) == []


def test_letterbox_refuses_to_crop():
    from scripts.export import ExportError

    with pytest.raises(ExportError, match="without cropping"):
        letterbox(Image.new("RGB", (1200, 700)), (1146, 717), "#000000")


def test_render_portrait_light(cli, media):
    out = media / "renders" / "portrait-light.mp4"
    result = cli("render", FIXTURE_SCENE, "--quality", "l", "--aspect", "9:16", "--theme", "light", "--out", out)
    assert result.exit_code == 0, result.output
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.width, stream.codec_context.height) == (480, 854)
        assert float(stream.average_rate) == pytest.approx(15, rel=1e-3)  # manim's own mux
        first = next(container.decode(video=0)).to_ndarray(format="rgb24")
    corner = first[:20, :20].reshape(-1, 3).mean(axis=0)
    assert np.allclose(corner, rgb(LIGHT.background), atol=3)  # a white page, not the dark theme


def decoded_frame_hashes(path):
    with av.open(str(path)) as container:
        return [hashlib.sha256(f.to_ndarray(format="rgb24").tobytes()).hexdigest() for f in container.decode(video=0)]


def test_render_in_parallel_gives_the_serial_frames(cli, media):
    """Sections rendered by three processes and joined without re-encoding decode to the frames of one process
    rendering them all; --section renders and joins only those asked for."""
    movies = {}
    for jobs in (1, 3):
        movies[jobs] = media / "renders" / f"jobs-{jobs}.mp4"
        result = cli("render", FIXTURE_SCENE, "--quality", "l", "--fps", "10", "--jobs", jobs, "--force",
                     "--out", movies[jobs])
        assert result.exit_code == 0, result.output
    serial, parallel = decoded_frame_hashes(movies[1]), decoded_frame_hashes(movies[3])
    assert len(serial) == round(sum(expected_section_seconds()) * 10)
    assert parallel == serial
    part = media / "renders" / "sections-1-3.mp4"
    result = cli("render", FIXTURE_SCENE, "--quality", "l", "--fps", "10", "-s", "1", "-s", "3", "--out", part)
    assert result.exit_code == 0, result.output
    first, third = round(expected_section_seconds()[0] * 10), round(expected_section_seconds()[2] * 10)
    assert decoded_frame_hashes(part) == serial[:first] + serial[-third:]

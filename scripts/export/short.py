"""Short videos for 视频号 / Bilibili / Douyin: chosen sections rendered in 9:16, joined, with narration and music.

Output: 1080×1920 H.264 (High profile, yuv420p, ``+faststart`` so a phone starts playing before
the download ends), AAC-LC 48 kHz stereo at −14 LUFS integrated (±1 LU) with the true peak ≤ −1 dBTP.

Timeline: each chosen section plays in order. With a voice (``--voice espeak|kokoro|edge``) the scene reads its own
narration: it is rendered with that voice, so each beat lasts at least its speech and the subtitles are burned into
its frames, and every sentence's audio is placed where the scene said it (:mod:`scripts.export.narration`); the
subtitles are also written beside the video (``<video>.srt``). Recorded files take precedence over the voice. With
per-section narration (``--narration-dir``) such a section plays its file instead, and lasts as long as its video or
its file, whichever is longer: the last frame is held while the voice finishes (or, when the section ends by fading
everything out, its last settled full frame, with the fade-out played after the hold; see :func:`hold_frame`). With
one narration track (``--narration``) the track starts with the first section, replaces any synthesised voice, and
the last frame is held if the track outlasts the video. Music (``--bgm``) loops over the whole video, fades in and
out and dips under narration. Without audio inputs the video gets a silent AAC track (players and platforms expect
one).

Nothing is written where the video goes until it has been encoded and its loudness measured: an error leaves no file.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scripts.export import ExportError, ensure_writable_dir, media_root, scratch_dir, slug
from scripts.export.audio import AUDIO_BITRATE, SAMPLE_RATE, MixSettings, decode, encode_at_loudness, mix, \
    narration_files
from scripts.export.gif import run_log_hashes
from scripts.export.narration import Placement, Voice, section_cues, spoken_beats, voice_clips, write_srt
from scripts.export.tools import ffmpeg_version, run_ffmpeg

SHORT_SIZE = (1080, 1920)
SHORT_ASPECT = "9:16"
VIDEO_CRF = 18  # visually lossless for flat vector art; the platforms re-encode anyway
VIDEO_PRESET = "medium"
MIN_WIDTH = 180  # px; --width below 1080 makes quick previews (and the tests' small renders)


@dataclass
class ShortResult:
    path: Path
    manifest: Path
    duration_s: float
    frames: int
    loudness: object | None
    timeline: list[dict] = field(default_factory=list)
    srt: Path | None = None


def _sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve() or (Path(b).exists() and os.path.samefile(a, b))
    except OSError:
        return False


def make_short(scene_spec: str, *, sections=(), narration: Path | None = None, narration_dir: Path | None = None,
               bgm: Path | None = None, fps: float = 30.0, theme: str = "dark", out: Path | None = None,
               settings: MixSettings = MixSettings(), jobs: int | None = None, voice: Voice | None = None,
               width: int = SHORT_SIZE[0], console=None) -> ShortResult:
    """``explainer short``: see the module docstring."""
    from scripts.export.render import RenderSpec, probe, render, size_for_width
    from scripts.export.scenes import resolve_scene, select_sections

    if voice:
        voice.check()  # an unknown or missing engine fails before anything else
    if narration and narration_dir:
        raise ExportError("Give either --narration (one track) or --narration-dir (one file per section), not both.")
    if fps not in (24, 25, 30, 50, 60):
        raise ExportError(f"--fps {fps:g}: use 30 (the default) or 60; 24, 25 and 50 also work.")
    if width % 2 or not MIN_WIDTH <= width <= SHORT_SIZE[0]:
        raise ExportError(f"--width {width}: give an even width from {MIN_WIDTH} to {SHORT_SIZE[0]} px (the platforms "
                          f"want {SHORT_SIZE[0]}; smaller sizes are previews).")
    scene = resolve_scene(scene_spec)
    inputs = [p for p in (narration, bgm) if p]

    # Everything that can be checked without rendering is checked first: the output path, then every audio input.
    default_name = f"{slug(scene.topic)}-short-{theme}.mp4"
    out = Path(out) if out else media_root() / "shorts" / default_name
    if out.is_dir() or not out.suffix:
        out = out / default_name
    elif out.suffix.lower() != ".mp4":
        raise ExportError(f"--out {out}: give a .mp4 file name or a folder.")
    for path in [scene.path, *inputs]:
        if _same_file(path, out):
            raise ExportError(f"--out {out} is one of the inputs; choose another file name (inputs are never overwritten).")
    ensure_writable_dir(out.parent)
    track = decode(narration, "Narration file") if narration else None
    music = decode(bgm, "Music file (--bgm)") if bgm else None
    plan = probe(scene, SHORT_ASPECT, console=console, voice=voice)
    chosen = select_sections(plan["sections"], sections, scene.class_name)
    clips: dict[int, object] = {}
    if narration_dir:
        for index, path in narration_files(Path(narration_dir), plan["sections"], chosen).items():
            if _same_file(path, out):
                raise ExportError(f"--out {out} is one of the inputs; choose another file name.")
            clips[index] = decode(path, "Narration file")
            inputs.append(path)

    width, height = size_for_width(SHORT_ASPECT, width, even=True)
    spec = RenderSpec(scene, theme, SHORT_ASPECT, width, height, fps, "sections", voice)
    result = render(spec, chosen, plan, jobs=jobs, console=console)

    # Timeline: frames per section plus held frames.
    timeline = []
    for index in chosen:
        section = result.section(index)
        if section.frames == 0:
            raise ExportError(f"Section {index + 1} ({section.name}) plays nothing, so it has no video; leave it out.")
        voice_s = len(clips[index]) / 1000 if index in clips else 0.0
        hold = max(0, math.ceil(voice_s * fps - section.frames - 1e-9))
        speaks = "recorded" if index in clips or track is not None else voice.engine if voice else None
        timeline.append({"section": section.name, "number": index + 1, "video": section.path,
                         "frames": section.frames, "held_frames": hold, "narration_s": round(voice_s, 3),
                         "voice": speaks, "settled": section.settled_frames(),
                         "numbers": section.record.get("numbers", {}),
                         "fine_print": section.record.get("fine_print", [])})
    if track is not None:
        video_frames = sum(t["frames"] + t["held_frames"] for t in timeline)
        extra = max(0, math.ceil(len(track) / 1000 * fps - video_frames - 1e-9))
        timeline[-1]["held_frames"] += extra
    at = 0
    for item in timeline:
        item["held_at_frame"] = hold_frame(item, result.record["background"]) if item["held_frames"] else None
        item["start_s"] = round(at / fps, 6)
        at += item["frames"] + item["held_frames"]
    total_frames = at
    total_s = total_frames / fps

    # Narration on the output timeline: recorded files where given, else each synthesised sentence where it was said.
    placed = [(round(item["start_s"] * 1000), clips[index]) for item, index in zip(timeline, chosen) if index in clips]
    if track is not None:
        placed.append((0, track))
    cues = []
    if voice:
        for item, index in zip(timeline, chosen):
            record, where = result.section(index).record, placement(item, fps)
            item["narration"] = spoken_beats(record, where)
            cues += section_cues(record, where)
            if item["voice"] == voice.engine:
                placed += voice_clips(item["narration"])

    status = console.status(f"Mixing audio and encoding {total_s:.1f} s of {width}×{height} video…") if console else \
        contextlib.nullcontext()
    srt_path = out.with_suffix(".srt")
    with status, scratch_dir("short-") as scratch:
        loudness = None

        def encode(audio: Path | None, target: Path) -> None:
            _encode(timeline, fps, total_s, audio, target)

        if placed or music is not None:
            mixed_path = scratch / "mix.wav"
            mix(round(total_s * 1000), placed, music, settings).export(mixed_path, format="wav")
            encoded, loudness = encode_at_loudness(mixed_path, scratch, encode, settings)
        else:
            encoded = scratch / "short.mp4"
            encode(None, encoded)
        from shared.files import atomic_path, write_json_atomic

        with atomic_path(out) as tmp:
            shutil.copyfile(encoded, tmp)
            write_srt(srt_path, cues)
    manifest = {
        "kind": "explainer-short",
        "video": out.name,
        "scene": scene.class_name,
        "scene_file": str(scene.path),
        "scene_source_sha256": scene.source_hash(),
        "theme": theme,
        "width": width, "height": height, "fps": fps,
        "frames": total_frames,
        "duration_s": round(total_s, 3),
        "sections": [{k: v for k, v in t.items() if k not in ("video", "settled")} for t in timeline],  # with numbers
        "voice": voice.describe() if voice else None,
        "srt": srt_path.name if cues else None,
        "narration": {str(p): _sha256(p) for p in inputs if p != bgm} or None,
        "bgm": {str(bgm): _sha256(bgm)} if bgm else None,
        "loudness": None if loudness is None else {
            "integrated_lufs": loudness.integrated_lufs, "true_peak_dbtp": loudness.true_peak_dbtp,
            "loudness_range_lu": loudness.loudness_range_lu, "target_lufs": settings.target_lufs},
        "run_logs": run_log_hashes(sorted({log for i in chosen for log in result.section(i).run_logs})),
        "bytes": out.stat().st_size,
        "tools": {"ffmpeg": ffmpeg_version()},
        "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    manifest_path = write_json_atomic(out.with_suffix(".json"), manifest)
    return ShortResult(out, manifest_path, total_s, total_frames, loudness, manifest["sections"],
                       srt_path if cues else None)


def placement(item: dict, fps: float) -> Placement:
    """Where a timeline item's section plays: its start, and the frames held inside it (see :func:`hold_frame`)."""
    at = item["held_at_frame"]
    if not item["held_frames"] or at is None:
        return Placement(item["start_s"])
    return Placement(item["start_s"], (at + 1) / fps, item["held_frames"] / fps)


def frame_content(video: Path, background: str) -> np.ndarray:
    """:func:`scripts.export.frames.content_share` of every frame of ``video``, measured on a small copy."""
    import subprocess

    from scripts.export.frames import CONTENT_PROBE_WIDTH, content_share
    from scripts.export.tools import ffmpeg

    width = CONTENT_PROBE_WIDTH
    height = width * SHORT_SIZE[1] // SHORT_SIZE[0]
    proc = subprocess.run(
        [ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(video), "-vf", f"scale={width}:{height}",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True)
    if proc.returncode != 0:
        raise ExportError(f"Could not read {video}: {proc.stderr.decode('utf-8', 'replace').strip()}")
    return content_share(np.frombuffer(proc.stdout, np.uint8).reshape(-1, height, width, 3), background)


def hold_frame(item: dict, background: str) -> int:
    """Which frame of a section to hold while its narration finishes (0-based in the section): its finished
    picture (:func:`scripts.export.frames.finished_frame`). That is the last frame unless the section ends by
    emptying the screen; then the fade-out plays after the hold, so the viewer looks at the finished picture."""
    from scripts.export.frames import finished_frame

    content = frame_content(item["video"], background)[: item["frames"]]
    if len(content) == 0:
        return item["frames"] - 1
    return finished_frame(len(content), item["settled"], lambda i: float(content[i]))


def _encode(timeline: list[dict], fps: float, total_s: float, audio: Path | None, out: Path) -> None:
    """Join the section videos (holding the chosen frames), encode H.264 + AAC with faststart."""
    args, chains, labels = [], [], []
    for i, item in enumerate(timeline):
        args += ["-i", str(item["video"])]
        hold, at = item["held_frames"], item.get("held_at_frame")
        if not hold or at is None or at >= item["frames"] - 1:
            chain = f"[{i}:v]trim=end_frame={item['frames']},setpts=PTS-STARTPTS"
            if hold:
                chain += f",tpad=stop_mode=clone:stop={hold}"
            chains.append(f"{chain},fps={fps:g},setsar=1[v{i}]")
            labels.append(f"[v{i}]")
        else:  # hold a frame inside the section, then play the rest (its closing fade-out)
            chains.append(f"[{i}:v]split[s{i}a][s{i}b]")
            chains.append(f"[s{i}a]trim=end_frame={at + 1},setpts=PTS-STARTPTS,tpad=stop_mode=clone:stop={hold},"
                          f"fps={fps:g},setsar=1[v{i}a]")
            chains.append(f"[s{i}b]trim=start_frame={at + 1}:end_frame={item['frames']},setpts=PTS-STARTPTS,"
                          f"fps={fps:g},setsar=1[v{i}b]")
            labels += [f"[v{i}a]", f"[v{i}b]"]
    graph = ";".join(chains) + f";{''.join(labels)}concat=n={len(labels)}:v=1:a=0,format=yuv420p[v]"
    audio_index = len(timeline)
    if audio is not None:
        args += ["-i", str(audio)]
    else:
        args += ["-f", "lavfi", "-i", f"anullsrc=r={SAMPLE_RATE}:cl=stereo"]
    args += [
        "-filter_complex", graph, "-map", "[v]", "-map", f"{audio_index}:a:0",
        "-c:v", "libx264", "-preset", VIDEO_PRESET, "-crf", str(VIDEO_CRF), "-profile:v", "high",
        "-pix_fmt", "yuv420p", "-r", f"{fps:g}",
        "-c:a", "aac", "-b:a", AUDIO_BITRATE, "-ar", str(SAMPLE_RATE), "-ac", "2",
        "-t", f"{total_s:.6f}", "-movflags", "+faststart", "-f", "mp4", str(out),
    ]
    run_ffmpeg(args, "Encoding the short video")

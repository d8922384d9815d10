"""Frame sampling (lmms_nb.video, lmms_nb.models._qwen_video) against the real upstream code on generated videos:
lmms-eval 0.7.3's `load_video_decord` / `read_video` (installed by the lmms-eval extra) and qwen_vl_utils'
`fetch_video` (test extra), frame for frame and pixel for pixel; decord and PyAV decode the same frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmms_nb import video as video_mod
from lmms_nb.models._qwen_video import fetch_video, qwen2_5_vl_video_loader, qwen2_vl_video_loader, smart_nframes
from lmms_nb.video import VideoError, is_video_path, load_video_uniform, read_frames, read_video

from test_video_videomme import write_video


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    # (frames, (width, height), fps): short and long for 8 / 32 frames, odd sizes, a frame rate that is no integer
    specs = {"short": (5, (64, 48), 3), "long": (41, (96, 64), 10), "odd": (13, (70, 50), 4)}
    return {name: write_video(root / f"{name}.mp4", n, size, fps, seed=k)
            for k, (name, (n, size, fps)) in enumerate(specs.items())}


@pytest.mark.parametrize("clip", ["short", "long", "odd"])
@pytest.mark.parametrize("frames", [1, 4, 8, 32])
def test_uniform_frames_equal_lmms_evals_load_video_decord(clips, clip, frames):
    from lmms_eval.models.model_utils.load_video import load_video_decord

    ours = load_video_uniform(clips[clip], frames)
    theirs = load_video_decord(str(clips[clip]), frames)
    assert ours.shape == theirs.shape and ours.dtype == np.uint8
    assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("clip", ["short", "long", "odd"])
@pytest.mark.parametrize("num_frm, fps, last", [(8, None, False), (32, None, False), (8, 2.0, False),
                                                (8, 0.5, True), (4, None, True), (16, 3.0, True)])
def test_read_video_equals_lmms_evals_pyav_read_video(clips, clip, num_frm, fps, last):
    from lmms_eval.models.model_utils.load_video import read_video as lmms_eval_read_video

    theirs = lmms_eval_read_video(str(clips[clip]), num_frm=num_frm, fps=fps, force_include_last_frame=last,
                                  backend="pyav")
    ours = read_video(clips[clip], num_frm=num_frm, fps=fps, force_include_last_frame=last)
    assert ours.shape == theirs.shape
    assert np.array_equal(ours, theirs)


def test_pyav_and_decord_decode_the_same_frames(clips, monkeypatch):
    with_decord = read_frames(clips["long"], [0, 5, 5, 40])
    monkeypatch.setattr(video_mod, "_has_decord", lambda: False)
    with_pyav = read_frames(clips["long"], [0, 5, 5, 40])
    assert with_decord.shape == (4, 64, 96, 3) and np.array_equal(with_decord, with_pyav)


@pytest.mark.parametrize("clip", ["short", "long", "odd"])
@pytest.mark.parametrize("kwargs", [{"nframes": 4}, {"nframes": 7, "min_pixels": 3136, "max_pixels": 12544},
                                    {"fps": 2.0}, {"fps": 1.0, "min_pixels": 3136, "max_pixels": 50000},
                                    {"nframes": 4, "min_pixels": 200704, "max_pixels": 1605632}])
def test_fetch_video_equals_qwen_vl_utils(clips, clip, kwargs):
    from qwen_vl_utils.vision_process import fetch_video as upstream

    try:
        (theirs, their_meta), their_fps = upstream({"video": str(clips[clip]), **kwargs}, return_video_sample_fps=True,
                                                   return_video_metadata=True)
    except Exception:  # noqa: BLE001 - more frames asked than the clip has: decord raises, then its torchvision
        # fallback fails too (torchvision 0.29 has no read_video); ours refuses with the reason
        with pytest.raises(VideoError, match="nframes should be in"):
            fetch_video(clips[clip], **kwargs)
        assert kwargs.get("nframes", 0) > 5 and clip == "short"
        return
    ours, meta = fetch_video(clips[clip], **kwargs)
    assert ours.dtype == theirs.dtype == torch.float32 and ours.shape == theirs.shape
    assert torch.equal(ours, theirs)
    assert meta == their_meta


def test_smart_nframes_equals_qwen_vl_utils():
    from qwen_vl_utils.vision_process import smart_nframes as upstream

    for total in (2, 5, 17, 300, 2000):
        for video_fps in (1.0, 7.5, 30.0):
            for ele in ({"nframes": 2}, {"nframes": min(total, 9)}, {}, {"fps": 0.5}, {"fps": 4.0, "min_frames": 6},
                        {"fps": 2.0, "max_frames": 10}):
                try:
                    theirs = upstream(ele, total_frames=total, video_fps=video_fps)
                except ValueError:
                    with pytest.raises(VideoError):
                        smart_nframes(total_frames=total, video_fps=video_fps, **ele)
                    continue
                assert smart_nframes(total_frames=total, video_fps=video_fps, **ele) == theirs, (total, video_fps, ele)


def test_qwen_loaders_follow_lmms_evals_classes(clips):
    # qwen2_5_vl (chat): nframes = min(max_num_frames, frame count) floored to even, min/max_pixels per frame
    video, meta = qwen2_5_vl_video_loader(max_num_frames=32, min_pixels=3136, max_pixels=12544)(str(clips["short"]))
    assert video.shape[0] == 4 and meta["frames_indices"] == [0, 1, 3, 4] and meta["total_num_frames"] == 5
    video, meta = qwen2_5_vl_video_loader(max_num_frames=8)(str(clips["long"]))
    assert video.shape[0] == 8 and video.shape[2] * video.shape[3] >= 256 * 28 * 28  # lmms-eval's min_pixels
    video, meta = qwen2_5_vl_video_loader(fps=1.0, max_num_frames=2)(str(clips["long"]))  # fps wins: 4.1 s -> 4
    assert video.shape[0] == 4
    # qwen2_vl (simple): 2 fps (4.1 s -> 8 frames), then at most max_num_frames of them, no metadata
    video, meta = qwen2_vl_video_loader(max_num_frames=32)(str(clips["long"]))
    assert video.shape[0] == 8 and meta is None
    assert qwen2_vl_video_loader(max_num_frames=3)(str(clips["long"]))[0].shape[0] == 3


def test_missing_and_broken_files_are_named(tmp_path):
    with pytest.raises(VideoError, match="nope.mp4.*does not exist"):
        load_video_uniform(tmp_path / "nope.mp4", 4)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 10)
    with pytest.raises(VideoError, match="cannot read video .*broken.mp4"):
        read_video(broken)
    assert is_video_path("x/clip.MKV") and not is_video_path("x/frame.JPG") and not is_video_path("a.wav")

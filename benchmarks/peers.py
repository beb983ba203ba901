"""What users run instead, run here on the same files for `jobs/benchmark.py`'s peer tables.

- PySceneDetect 0.7 (`scenedetect`, optional): ContentDetector and AdaptiveDetector on its
  PyAV backend, decoding the file itself with its defaults, as its documentation shows.
- A do-it-yourself featurizer (REFERENCE ONLY, not used by the pipeline): PySceneDetect for
  the shots, a PyAV seek per shot for its central frame, a torchvision backbone with its
  usual transforms, librosa for the spectrograms: what a user without this project would
  write to get the same outputs.

Speeds are frames (or trailers) per CPU-second of this process, all threads counted, so a
detector that decodes on several threads is charged for each.
"""
from __future__ import annotations

import resource
import time
from typing import Any, Callable

import av
import librosa
import numpy as np
import torch
from torchvision.transforms import functional as F

from featurize import audio
from featurize.backbone import FrameEmbedder, preprocess
from featurize.config import FeaturizeConfig
from featurize.extract import decode


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """fn() -> (result, wall seconds, CPU seconds of every thread of this process)."""
    t, c = time.perf_counter(), cpu_seconds()
    out = fn()
    return out, time.perf_counter() - t, cpu_seconds() - c


def scenedetect_available() -> str:
    """"" when PySceneDetect can run, else why not."""
    try:
        import scenedetect  # noqa: F401  (lazy: an optional extra, `peers`)
    except ImportError as e:
        return f"PySceneDetect is not installed ({e.name}); pip install scenedetect-headless"
    return ""


def _scenedetect_video(path: str):
    """PySceneDetect's PyAV video with its defaults. Opening one hands FFmpeg's log back to
    stderr (its `suppress_output=False`); PyAV's silence is restored at once, so the encoders
    used later in the run do not print their statistics."""
    from scenedetect import open_video  # lazy: optional extra
    video = open_video(path, backend="pyav")
    av.logging.set_level(None)
    return video


def scenedetect_cuts(path: str, detector: str = "content") -> tuple[list[int], int]:
    """PySceneDetect's shot starts after the first (frame indices) and the frames it read."""
    from scenedetect import AdaptiveDetector, ContentDetector, SceneManager  # lazy: optional extra
    video = _scenedetect_video(path)
    manager = SceneManager()
    manager.add_detector(ContentDetector() if detector == "content" else AdaptiveDetector())
    manager.detect_scenes(video, show_progress=False)
    scenes = manager.get_scene_list(start_in_scene=True)
    return [s[0].frame_num for s in scenes[1:]], int(video.frame_number)


def decode_only(path: str) -> tuple[list[int], int]:
    """PyAV decoding every frame on one thread and nothing else: the floor under every
    detector that reads the frames (no shots, the frames it read)."""
    with av.open(path) as c:
        s = c.streams.video[0]
        s.codec_context.thread_count = 1
        return [], sum(1 for _ in c.decode(s))


def project_cuts(path: str, cfg: FeaturizeConfig) -> tuple[list[int], int]:
    """This project's shots as the pipeline finds them, with `cfg.shots.detector`: hsv inside
    the decode pass, or transnetv2 on the small frames that pass keeps (the network on the CPU,
    its weights loaded once)."""
    d = decode(path, cfg, audio=False)
    return list(d.cuts), d.n_frames


# ---------------------------------------------------------------- do-it-yourself reference

def _central_frames(path: str, shots: list[tuple[int, int]], fps: float) -> list[np.ndarray]:
    """A PyAV seek per shot to its central frame (keyframe seek, then decode forward)."""
    out = []
    with av.open(path) as c:
        vs = c.streams.video[0]
        for start, end in shots:
            target = (start + end) / 2 / fps
            c.seek(int(target / vs.time_base), stream=vs, backward=True)
            for frame in c.decode(vs):
                if frame.time is not None and frame.time >= target - 0.5 / fps:
                    out.append(frame.to_ndarray(format="rgb24"))
                    break
    return out


def _audio_librosa(path: str) -> np.ndarray:
    """The audio track decoded with PyAV, then mono and 44.1 kHz with librosa."""
    with av.open(path) as c:
        if not c.streams.audio:
            return np.zeros(0, np.float32)
        st = c.streams.audio[0]
        chunks = [f.to_ndarray() for f in c.decode(st)]
        sr = st.rate
    y = np.concatenate(chunks, axis=-1).astype(np.float32)
    y = librosa.to_mono(y) if y.ndim > 1 else y
    return librosa.resample(y, orig_sr=sr, target_sr=audio.SAMPLE_RATE) if sr != audio.SAMPLE_RATE else y


class DiyFeaturizer:
    """The reference pipeline: same outputs as the project's (keyframe features (t, dim),
    spectrograms (s, 130, 513)), built from the usual parts one after the other."""

    def __init__(self, cfg: FeaturizeConfig):
        self.cfg = cfg
        self.model = FrameEmbedder(cfg.backbone, "cpu").model           # the same network and weights
        self.pre = preprocess(cfg.backbone)
        self.mean = torch.tensor(self.pre.mean).view(3, 1, 1)
        self.std = torch.tensor(self.pre.std).view(3, 1, 1)

    def _transform(self, rgb: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(rgb).permute(2, 0, 1)
        x = F.center_crop(F.resize(x, self.pre.resize, antialias=True), self.pre.crop)
        return (x.float() / 255 - self.mean) / self.std

    @torch.inference_mode()
    def __call__(self, path: str) -> dict[str, np.ndarray]:
        from scenedetect import ContentDetector, SceneManager  # lazy: optional extra
        video = _scenedetect_video(path)
        manager = SceneManager()
        manager.add_detector(ContentDetector())
        manager.detect_scenes(video, show_progress=False)
        scenes = manager.get_scene_list(start_in_scene=True)
        shots = [(s.frame_num, e.frame_num - 1) for s, e in scenes]
        frames = _central_frames(path, shots, float(video.frame_rate))
        x = torch.stack([self._transform(f) for f in frames])
        feats = torch.cat([self.model(b) for b in torch.split(x, self.cfg.backbone.batch_size)]).numpy()
        y = _audio_librosa(path)
        w, _ = audio.windows(y)
        S = np.abs(librosa.stft(w, n_fft=audio.N_FFT, hop_length=audio.HOP, center=True,
                                pad_mode="constant")).transpose(0, 2, 1)
        return {"frames": feats, "spectrograms": S}

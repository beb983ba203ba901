"""Decode a trailer once with PyAV: the shot rule on every frame's colour samples,
keyframes at model size (or, for a learned detector, small frames and keyframe
candidates), and the audio track mixed to mono and resampled to 44.1 kHz.

    container (`containers`) -> video packets -> frames (`frames`: samples, keyframes)
                                                 -> `shots.ShotTracker`, `lowlevel.MotionMeter`
                             -> audio packets -> `audio_decode.AudioTrack`
    both placed on their own `timeline.Timeline`, then aligned

Full-size frames never leave this function.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from featurize import shot_detectors
from featurize.audio_decode import AudioTrack
from featurize.config import FeaturizeConfig
from featurize.containers import Damage, choose_stream, clock_breaks, open_media, packets, seconds
from featurize.frames import FrameBatcher, PlaneSampler, display_size, keyframe_array, quarter_turns, small_rgb
from featurize.lowlevel import MotionMeter
from featurize.shots import CandidatePool, Keyframe, ShotRule, ShotTracker, subsample
from featurize.timeline import MAX_GAP_S, Timeline, frame_duration, true_fps

CANDIDATES_PER_S = 8     # a learned detector's keyframe candidates start this dense (then thin out when
                         # `shots.candidates` are held): a shot shorter than 1/8 s may get no keyframe


@dataclass(frozen=True)
class KeyframeGeometry:
    """How keyframes are cut for the backbone (`featurize.backbone.keyframe_geometry`): short side
    resized to `short`, then a centre crop `size` x `size`."""
    short: int
    size: int


class DecodeError(RuntimeError):
    """A file that opens but holds no usable video."""


@dataclass
class DecodedTrailer:
    keyframes: np.ndarray                 # (t, S, S, 3) uint8, S = backbone image size
    frame_times: np.ndarray               # (t,) float32 seconds
    shot_starts: list[int]                # frame index where each shot starts
    n_frames: int
    duration_s: float
    fps: float
    width: int
    height: int
    video_codec: str
    shot_lengths_s: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    motion: float = 0.0                   # share of active pixels between consecutive frames
    audio: np.ndarray | None = None       # mono float32 at 44.1 kHz; None: no audio stream
    audio_codec: str = ""
    sample_rate: int = 0                  # of the source audio stream
    video_stream: int = 0                 # index of the stream decoded
    audio_stream: int = -1                # -1: no audio stream
    decode_errors: int = 0                # packets skipped as undecodable (video and audio)
    frames_lost: int = 0                  # video packets that gave no frame
    audio_repaired: int = 0               # non-finite audio samples replaced by silence
    similarity: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # frame i + 1 vs i (the cut test's)
    cuts: list[int] = field(default_factory=list)   # frame index where each shot after the first starts
    # With a learned detector (`featurize.shot_detectors`) the shots are found after this pass:
    # `keyframes` / `frame_times` are then keyframe candidates at frames `candidates`, `thumbs`
    # every frame at the detector's size, until `shot_placement.place_shots` chooses among them.
    thumbs: np.ndarray | None = None                # (n_frames, h, w, 3) uint8 RGB at the detector's frame_size
    candidates: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    warnings: list[str] = field(default_factory=list)   # what was dropped and why (the audio of a broken track)

    @property
    def shots_pending(self) -> bool:
        return self.thumbs is not None


def decode_trailer(path: str, cfg: FeaturizeConfig, geometry: KeyframeGeometry, audio: bool = True) -> DecodedTrailer:
    """One pass over the file: video frames feed the shot tracker (and motion meter), audio
    is resampled to 44.1 kHz mono. Packets are decoded one by one, and those a decoder
    refuses are skipped and counted, so damage costs the frames it hits, not the trailer;
    the file fails (DecodeError, or the error that opened it) only when no frame decodes."""
    sc = cfg.shots
    short, size = geometry.short, geometry.size
    detector = shot_detectors.get(sc.detector)
    learned = not detector.online        # shots found later from `thumbs`; candidates kept meanwhile
    bins = (sc.hue_bins, sc.sat_bins, sc.val_bins)
    motion = MotionMeter()
    damage = Damage()
    with open_media(path) as container:
        stream = choose_stream(container.streams.video, container.streams.best("video"))
        if stream is None:
            what = "only an attached picture" if container.streams.video else "no video stream"
            raise DecodeError(what + (" (audio only)" if container.streams.audio else ""))
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = cfg.decode_threads or math.ceil(cfg.decode_cpus)
        rate = stream.average_rate or stream.guessed_rate
        declared = float(rate) if rate and float(rate) < 1000 else 0.0     # checked against the timestamps below
        width, height = stream.codec_context.width, stream.codec_context.height
        if not width or not height:
            raise DecodeError("video stream has no frame size")
        ratio = stream.codec_context.sample_aspect_ratio
        sar = float(ratio) if ratio and float(ratio) > 0 else 1.0
        scaler, small = VideoReformatter(), VideoReformatter()     # one scaling context each, kept for the video
        tracker = ShotTracker(ShotRule.of(sc), max_candidates=sc.max_candidates,
                              keep=None if learned else lambda frame: keyframe_array(frame, size, short, sar,
                                                                                     scaler=scaler))
        pool, thumbs = CandidatePool(sc.candidates, round((declared or 25) / CANDIDATES_PER_S)), []
        astream = choose_stream(container.streams.audio, container.streams.best("audio")) if audio else None
        max_gap = MAX_GAP_S if clock_breaks(container) else math.inf
        track = AudioTrack(max_gap)
        batcher = FrameBatcher(PlaneSampler(sc.thumb_height), tracker, motion, bins, payloads=not learned)
        frame_dur = frame_duration(declared)
        timeline = Timeline(max_gap)
        times: list[float] = []
        warnings: list[str] = []
        audio_errors = 0
        vtb = float(stream.time_base) if stream.time_base else None     # a float product per frame, not a Fraction
        atb = float(astream.time_base) if astream and astream.time_base else None
        n, rotation = 0, 0
        for packet in packets(container, [s for s in (stream, astream) if s is not None], damage):
            if isinstance(packet, tuple):                          # end of file: drain that decoder
                s, packet = packet
            else:
                s = packet.stream
                damage.video_packets += s is stream
            if s is not stream and astream is None:
                continue                                           # the audio was dropped
            try:
                frames = s.codec_context.decode(packet)
                if s is not stream:
                    for frame in frames:
                        track.push(frame, seconds(frame, atb))
                    continue
            except av.error.FFmpegError as e:
                damage.note(e)
                audio_errors += s is not stream
                continue
            except Exception as e:       # noqa: BLE001  an audio path that breaks loses the audio, not the video
                if s is stream:
                    raise
                warnings.append(f"audio dropped: {type(e).__name__}: {e}"[:300])
                astream, track = None, AudioTrack(max_gap)
                continue
            for frame in frames:
                if n == 0:
                    rotation = int(frame.rotation or 0)
                t = timeline.place(seconds(frame, vtb), frame_dur)
                times.append(t)
                batcher.push(frame, t)
                if learned:
                    thumbs.append(small_rgb(frame, quarter_turns(rotation), detector.frame_size, small))
                    pool.push(n, t, lambda: keyframe_array(frame, size, short, sar, scaler=scaler))  # noqa: B023 (called at once)
                n += 1
        batcher.flush()
        codec = stream.codec_context.name
        if astream is not None and track.first is None and audio_errors:
            warnings.append(f"audio dropped: no frame of {audio_errors} packets decoded ({damage.message})"[:300])
        acodec = astream.codec_context.name if astream else ""
        src_rate = int(astream.codec_context.sample_rate or 0) if astream else 0
        indices = stream.index, astream.index if astream else -1
    if n == 0:
        raise DecodeError("no decodable video frames" + (f" ({damage.message})" if damage.message else ""))
    kfs = tracker.finish()
    if learned:                              # (index, time, image) candidates stand in until the shots are known
        kfs = [Keyframe(i, t, (i, i), img) for i, t, img in pool.items]
    else:
        kfs = [kfs[i] for i in subsample(len(kfs), cfg.max_keyframes)]
    keyframes = np.stack([k.payload for k in kfs])
    fps = true_fps(declared, times)
    duration = times[-1] + 1.0 / fps if fps else timeline.end
    lead = (track.first - timeline.first) if track.first is not None and timeline.first is not None else 0.0
    y = track.finish(lead=max(-MAX_GAP_S, min(lead, duration)))
    w, h = display_size(int(width), int(height), sar, quarter_turns(rotation))
    return DecodedTrailer(
        keyframes=keyframes,
        frame_times=np.array([k.time for k in kfs], np.float32),
        shot_starts=[] if learned else [k.shot[0] for k in kfs],
        n_frames=n, duration_s=duration, fps=fps, width=w, height=h, video_codec=codec,
        shot_lengths_s=np.array([] if learned else [(times[k.shot[1]] if k.shot[1] < n else duration) - times[k.shot[0]]
                                                    for k in kfs], np.float32),
        warnings=warnings,
        thumbs=np.stack(thumbs) if learned else None,
        candidates=np.array([k.index for k in kfs] if learned else [], np.int64),
        motion=motion.value, audio=y, audio_codec=acodec, sample_rate=src_rate,
        video_stream=indices[0], audio_stream=indices[1],
        decode_errors=damage.errors, frames_lost=max(0, damage.video_packets - n),
        audio_repaired=track.repaired, similarity=tracker.similarity,
        cuts=[] if learned else list(tracker.boundaries),
    )



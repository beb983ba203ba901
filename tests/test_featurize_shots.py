import colorsys

import numpy as np
import pytest

from featurize.shots import ShotTracker, hsv_histogram, intersection, rgb_to_hsv, shot_boundaries, yuv_histogram


def test_rgb_to_hsv_matches_colorsys():
    rgb = np.random.default_rng(0).integers(0, 256, (500, 3), dtype=np.uint8)
    h, s, v = rgb_to_hsv(rgb)
    ref = np.array([colorsys.rgb_to_hsv(*(c / 255.0)) for c in rgb])
    np.testing.assert_allclose(np.c_[h, s, v], ref, atol=1e-5)


def test_histogram_intersection():
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((8, 8, 3), np.uint8)
    blue[..., 2] = 255
    hr, hb = hsv_histogram(red), hsv_histogram(blue)
    assert hr.sum() == pytest.approx(1.0)
    assert intersection(hr, hr) == pytest.approx(1.0) and intersection(hr, hb) == pytest.approx(0.0)


def test_boundaries_at_dips_only():
    sims = np.full(60, 0.97, np.float32)
    sims[[9, 30]] = 0.1          # hard cuts before frames 10 and 31
    sims[45:50] = [0.8, 0.7, 0.6, 0.7, 0.8]   # a gradual transition centred on 47
    sims[20] = 0.9               # a small dip: not a cut
    assert shot_boundaries(sims, smooth=3, radius=4, threshold=0.75) == [10, 31, 48]


def test_online_tracker_matches_offline_and_picks_central_frames():
    rng = np.random.default_rng(0)
    cuts = [0, 7, 30, 36, 80, 150]   # at least radius + 1 apart
    n = 170
    colours = rng.integers(0, 256, (len(cuts), 3))
    shot_of = np.searchsorted(cuts, np.arange(n), side="right") - 1
    tracker = ShotTracker(max_candidates=8)
    for i in range(n):
        img = np.tile(colours[shot_of[i]], (6, 6, 1)).astype(np.uint8)
        img[i % 6, :, :] = rng.integers(0, 256, 3)      # a little motion inside each shot
        tracker.push(hsv_histogram(img), i / 24, payload=i)
    kfs = tracker.finish()
    assert tracker.boundaries == shot_boundaries(np.array(tracker.sims))
    assert [k.shot[0] for k in kfs] == cuts
    for k in kfs:
        a, b = k.shot
        assert a <= k.payload < b
        assert abs(k.payload - (a + b - 1) / 2) <= max(1, (b - a) / 8)   # candidates thinned only in long shots
        if b - a <= 8:
            assert k.payload == (a + b - 1) // 2 or k.payload == (a + b) // 2


def test_cuts_of_generated_trailer(tmp_path):
    from featurize.config import FeaturizeConfig
    from featurize.sample_trailers import render_trailer
    from featurize.extract import decode
    hits = total = 0
    for seed, genres in enumerate([["action", "comedy"], ["drama", "romance"], ["scifi", "horror", "crime"]]):
        truth = render_trailer(tmp_path / f"t{seed}.mp4", genres, seed)
        found = decode(str(tmp_path / f"t{seed}.mp4"), FeaturizeConfig()).shot_starts
        total += len(truth) - 1
        hits += sum(any(abs(c - f) <= 2 for f in found) for c in truth[1:])
        assert len(found) <= len(truth) + 1
    assert hits / total >= 0.85, (hits, total)


def test_histogram_table_equals_direct_hsv_binning():
    from featurize.shots import hsv_bin
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    img[0, :3] = [[0, 0, 0], [255, 255, 255], [255, 0, 0]]
    for bins in ((16, 4, 4), (8, 3, 2)):
        ref = np.bincount(hsv_bin(img, bins).ravel(), minlength=int(np.prod(bins))).astype(np.float32)
        np.testing.assert_array_equal(hsv_histogram(img, bins), ref / ref.sum())


def test_yuv_histogram_from_planes_matches_rgb_histogram(tmp_path):
    """The decoder-plane path (YUV samples, quantised table) bins like RGB conversion does,
    for planar YUV read in place and for other pixel formats converted first."""
    import av

    from featurize.shots import yuv_to_rgb
    from featurize.sample_trailers import SampleSpec, render_trailer
    from featurize.frames import PlaneSampler
    render_trailer(tmp_path / "t.mp4", ["comedy", "action"], 3, SampleSpec(min_seconds=2, max_seconds=2.5))
    sampler = PlaneSampler(64)
    with av.open(str(tmp_path / "t.mp4")) as c:
        frames = [f for i, f in enumerate(c.decode(video=0)) if i % 10 == 0]
    for frame in frames:
        ref = hsv_histogram(frame.to_ndarray(format="rgb24"))
        for f in (frame, frame.reformat(format="nv12"), frame.reformat(format="rgb24")):
            yuv, full = sampler(f)
            assert yuv.shape[0] == 3 and 32 <= yuv.shape[1] <= 96 and yuv.dtype == np.uint8 and not full
            assert intersection(ref, yuv_histogram(yuv)) > 0.95, f.format.name
    # BT.601 limited range: black, white and red land where RGB says
    yuv = np.array([[16, 128, 128], [235, 128, 128], [81, 90, 240]], np.uint8)
    np.testing.assert_allclose(yuv_to_rgb(yuv, False).astype(int), [[0, 0, 0], [255, 255, 255], [255, 0, 0]], atol=2)


def test_colour_variance_is_the_luv_covariance_determinant():
    from featurize.lowlevel import color_variances, rgb_to_luv
    kf = np.random.default_rng(1).integers(0, 256, (3, 20, 24, 3), dtype=np.uint8)
    kf[2] = 77                                            # a constant keyframe has none
    ref = [max(np.linalg.det(np.cov(rgb_to_luv(k).reshape(-1, 3), rowvar=False)), 0.0) for k in kf]
    np.testing.assert_allclose(color_variances(kf), ref, rtol=1e-9, atol=1e-9)
    assert ref[0] > 0 and color_variances(kf)[2] == 0


def test_batched_frames_match_one_by_one(tmp_path):
    """FrameBatcher (groups of frames, whole-array histograms, similarities and motion) gives
    the shots, keyframes and motion of per-frame processing, also across a mid-stream change
    of pixel format (which changes the sample grid)."""
    import av

    from featurize.lowlevel import MotionMeter
    from featurize.sample_trailers import SampleSpec, render_trailer
    from featurize.frames import FrameBatcher, PlaneSampler
    render_trailer(tmp_path / "t.mp4", ["action", "drama"], 4, SampleSpec(min_seconds=5, max_seconds=6))
    with av.open(str(tmp_path / "t.mp4")) as c:
        frames = [f if i < 40 else f.reformat(format="rgb24") for i, f in enumerate(c.decode(video=0))]
    one, one_motion, sampler = ShotTracker(max_candidates=4), MotionMeter(), PlaneSampler(64)
    for i, f in enumerate(frames):
        yuv, full = sampler(f)
        one.push(yuv_histogram(yuv, full_range=full), i / 12, f)
        one_motion.push(yuv[0])
    batched, motion = ShotTracker(max_candidates=4), MotionMeter()
    b = FrameBatcher(PlaneSampler(64), batched, motion, (16, 4, 4), size=7)
    for i, f in enumerate(frames):
        b.push(f, i / 12)
    b.flush()
    np.testing.assert_array_equal(batched.sims, one.sims)
    assert len(one.finish()) > 2 and batched.finish()
    assert batched.boundaries == one.boundaries
    assert [k.index for k in batched.keyframes] == [k.index for k in one.keyframes]
    assert [k.payload for k in batched.keyframes] == [k.payload for k in one.keyframes]
    assert motion.value == pytest.approx(one_motion.value, rel=1e-12)


def test_compiled_histograms_and_motion_equal_their_definitions():
    """The compiled per-frame passes against the table lookup + bincount they replace, and
    the motion count against plain array arithmetic."""
    from featurize.lowlevel import MotionMeter
    from featurize.shots import YUV_BITS, _yuv_bin_table, yuv_histograms
    rng = np.random.default_rng(5)
    yuv = rng.integers(0, 256, (6, 3, 999), dtype=np.uint8)
    for bins, full in (((16, 4, 4), False), ((8, 3, 2), True), ((32, 16, 16), False)):
        s = 8 - YUV_BITS
        codes = ((yuv[:, 0].astype(np.intp) >> s) << 2 * YUV_BITS) | ((yuv[:, 1].astype(np.intp) >> s) << YUV_BITS) \
            | (yuv[:, 2].astype(np.intp) >> s)
        table = _yuv_bin_table(bins, full)
        nb = int(np.prod(bins))
        ref = np.stack([np.bincount(table[c], minlength=nb) for c in codes]).astype(np.float32) / np.float32(999)
        np.testing.assert_array_equal(yuv_histograms(yuv, bins, full), ref)
    lumas = rng.integers(0, 256, (9, 500), dtype=np.uint8)
    lumas[3] = lumas[2]                                   # a still frame: no active pixels
    m = MotionMeter()
    m.push_many(lumas[:4])
    m.push_many(lumas[4:])
    diffs = np.abs(np.diff(lumas.astype(int), axis=0)) > 0.1 * 255
    assert m.value == pytest.approx(diffs.mean(1).mean(), rel=1e-12)


def test_tracker_keeps_converted_keyframes_only():
    """`keep` converts each keyframe's payload when its shot closes: the same keyframes,
    and no original payload is held for a closed shot."""
    rng = np.random.default_rng(2)
    shots_colours = rng.dirichlet(np.ones(8), size=6).astype(np.float32)
    hists = np.repeat(shots_colours, [30, 12, 50, 7, 40, 25], axis=0)
    plain, kept = ShotTracker(max_candidates=8), ShotTracker(max_candidates=8, keep=lambda p: ("small", p))
    for i, h in enumerate(hists):
        plain.push(h, i / 24, i)
        kept.push(h, i / 24, i)
    assert len(plain.finish()) == 6
    assert [("small", k.payload) for k in plain.keyframes] == [k.payload for k in kept.finish()]


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv422p", "yuv444p"])
def test_plane_sampler_reads_the_grid_of_each_plane(pix_fmt):
    """The compiled gather equals NumPy indexing of the planes: luma at the grid's centres,
    chroma at the subsampled position covering each (line padding included)."""
    import av

    from featurize.frames import PLANAR_YUV, PlaneSampler
    rng = np.random.default_rng(0)
    frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (90, 160, 3), dtype=np.uint8), format="rgb24")
    frame = frame.reformat(format=pix_fmt)
    yuv, full = PlaneSampler(30)(frame)
    cx, cy = PLANAR_YUV[pix_fmt]
    step = round(90 / 30)
    r, c = np.arange(step // 2, 90, step), np.arange(step // 2, 160, step)
    planes = [np.frombuffer(p, np.uint8).reshape(-1, p.line_size) for p in frame.planes[:3]]
    np.testing.assert_array_equal(yuv[0], planes[0][np.ix_(r, c)])
    for k in (1, 2):
        np.testing.assert_array_equal(yuv[k], planes[k][np.ix_(r >> cy, c >> cx)])
    assert not full


def test_shot_scores_match_within_one_frame_and_inside_gradual_transitions():
    from benchmarks.shot_eval import score
    from featurize.sample_trailers import Transition
    truth = [Transition("cut", 10, 10), Transition("dissolve", 30, 41), Transition("cut", 60, 60),
             Transition("fade", 80, 85)]
    s = score(truth, [11, 35, 36, 62, 79])          # 11: the cut; 35: the dissolve; 36: a second hit (FP);
    assert s.found == {"cut": 1, "gradual": 2}        # 62: two frames off (missed cut, FP); 79: within 1 of the fade
    assert s.truth == {"cut": 2, "gradual": 2} and s.false_positives == 2
    p, r, f = s.prf("cut")
    assert (p, r) == (pytest.approx(1 / 3), 0.5) and f == pytest.approx(2 * p * r / (p + r))
    assert s.prf("gradual")[:2] == (0.5, 1.0)
    assert s.prf("all")[:2] == (3 / 5, 3 / 4)
    assert score(truth, []).prf("all")[:2] == (1.0, 0.0)


def test_rendered_dissolves_and_fades_mix_the_shots_they_join(tmp_path):
    import av

    from featurize.sample_trailers import SampleSpec, render_trailer, render_with_transitions
    spec = SampleSpec(width=96, height=64, fps=12, min_seconds=12, max_seconds=12.001, gradual=1.0, audio=False)
    truth = render_with_transitions(tmp_path / "g.mp4", ["drama"], 7, spec)
    with av.open(str(tmp_path / "g.mp4")) as c:
        frames = np.stack([f.to_ndarray(format="rgb24").astype(np.float32) for f in c.decode(video=0)])
    assert len(frames) == int(12 * 12)
    gradual = [t for t in truth if t.kind != "cut" and t.end - t.start >= 3]
    assert gradual and all(t.start <= t.end for t in truth)
    for t in gradual:
        before, after, mid = frames[t.start - 1], frames[t.end + 1], frames[(t.start + t.end) // 2]
        if t.kind == "fade":                      # through black: darker than both ends
            assert mid.mean() < 0.75 * min(before.mean(), after.mean())
        else:                                     # a cross-fade: nearer the average than either end
            avg = (before + after) / 2
            assert np.abs(mid - avg).mean() < min(np.abs(mid - before).mean(), np.abs(mid - after).mean())
    hard = SampleSpec(width=96, height=64, fps=12, min_seconds=12, max_seconds=12.001, audio=False)
    cuts = render_with_transitions(tmp_path / "h.mp4", ["drama"], 7, hard)
    assert cuts and {t.kind for t in cuts} == {"cut"} and all(t.start == t.end for t in cuts)
    assert render_trailer(tmp_path / "h2.mp4", ["drama"], 7, hard) == [0] + [t.start for t in cuts]

import colorsys

import numpy as np
import pytest

from featurize.histograms import hsv_histogram, intersection, rgb_to_hsv, yuv_histogram
from featurize.shots import ShotRule, ShotTracker, shot_boundaries
from tests import shot_reference


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


def _shots(n: int, starts: list[int], seed: int = 0, bins: int = 64, noise: float = 0.02) -> np.ndarray:
    """(n, bins) histograms: one random colour mix per shot, each frame jittered a little."""
    rng = np.random.default_rng(seed)
    base = rng.dirichlet(np.full(bins, 0.3), size=len(starts))
    shot_of = np.searchsorted(starts, np.arange(n), side="right") - 1
    h = base[shot_of] + noise * rng.random((n, bins)) / bins
    return (h / h.sum(1, keepdims=True)).astype(np.float32)


def test_the_rule_finds_cuts_and_dissolves_but_not_flashes_or_drifts():
    h = _shots(200, [0, 40, 100, 170])
    h[70:73] = np.eye(64, dtype=np.float32)[5]          # a 3-frame flash inside the second shot
    for i, a in enumerate(np.linspace(0, 1, 22)[1:-1]):  # shot 3 dissolves into shot 4 over frames 150..169
        h[150 + i] = (1 - a) * h[149] + a * h[170]
    found = shot_boundaries(h)
    assert found[:2] == [40, 100] and len(found) == 3, found
    assert 150 <= found[2] <= 170                         # the dissolve, once, inside it
    # a slow drift (a pan across a scene): each frame a little further from the first
    drift = np.stack([(1 - a) * h[0] + a * h[45] for a in np.linspace(0, 1, 120)])
    assert shot_boundaries(drift) == []


def test_a_jump_cut_is_seen_in_the_regions_only():
    """Two moments of one shot, reframed: the whole frame's colours stay, their places move."""
    rng = np.random.default_rng(1)
    regions = rng.dirichlet(np.full(32, 0.3), size=9).astype(np.float32)
    frames = np.stack([regions + 0.01 * rng.random((9, 32)).astype(np.float32) / 32 for _ in range(80)])
    frames[40:] = frames[40:, ::-1]                       # the same colours, regions swapped
    frames /= frames.sum(2, keepdims=True)
    whole = frames.mean(1)
    assert shot_boundaries(whole) == []
    assert shot_boundaries(whole, regions=frames) == [40]
    assert shot_boundaries(whole, ShotRule(region_grid=1), regions=frames) == []


def test_a_fade_through_black_is_one_boundary():
    """Out to black and in again: the black between the two changes is no shot of its own
    (with each frame's share of black samples given), and the streamed rule equals the
    reference; without the shares, with `black_gap` 0, or when no frame of the stretch is
    all but black (a dark night shot), both changes are boundaries."""
    from featurize.histograms import dark_share
    h = _shots(160, [0, 70], seed=4)
    black = np.eye(64, dtype=np.float32)[0]
    w = np.r_[np.linspace(0.2, 1, 5), np.ones(4), np.linspace(1, 0.2, 5)][:, None]
    h[63:77] = (1 - w) * np.r_[h[62:63].repeat(7, 0), h[77:78].repeat(7, 0)] + w * black
    luma = np.where(np.arange(100)[None, :] < 100 * w, 16, 120).astype(np.uint8)     # share w of black samples
    dark = np.zeros(160)
    dark[63:77] = dark_share(luma, full_range=False)
    assert np.allclose(dark[63:77], w[:, 0], atol=0.01)
    both = shot_boundaries(h)
    assert len(both) == 2 and 60 <= both[0] < both[1] <= 80, both
    one = shot_boundaries(h, dark=dark)
    assert one == both[:1] == shot_reference.boundaries(h, ShotRule(), None, dark)
    assert shot_boundaries(h, ShotRule(black_gap=0), dark=dark) == both
    night = np.minimum(dark, 0.9)                      # mostly dark, never black
    assert shot_boundaries(h, dark=night) == both == shot_reference.boundaries(h, ShotRule(), None, night)
    t = ShotTracker()
    for i in range(0, 160, 7):
        t.push_many(h[i:i + 7], [0.0] * len(h[i:i + 7]), list(range(i, min(i + 7, 160))), None, dark[i:i + 7])
    kfs = t.finish()
    assert t.boundaries == one and [k.shot for k in kfs] == [(0, one[0]), (one[0], 160)]


def test_a_fade_out_decided_after_the_cut_in_still_joins_the_black():
    """A slow fade out (a gradual boundary, decided seconds later) to black, then a cut in
    (decided at once): the cut closes its shot first, the fade out splits it later, and the
    black part split off joins the next shot, as in the whole-video reference."""
    h = _shots(200, [0, 80], seed=4)
    w = np.r_[np.linspace(0.1, 1, 14), np.ones(6)][:, None]      # out to black over 14 frames, 6 black, cut in
    h[60:80] = (1 - w) * h[59:60] + w * np.eye(64, dtype=np.float32)[0]
    dark = np.zeros(200)
    dark[60:80] = w[:, 0]
    ref = shot_reference.boundaries(h, ShotRule(), None, dark)
    assert len(ref) == 1 and 60 < ref[0] < 80 and len(shot_reference.boundaries(h, ShotRule())) == 2
    for group in (1, 7, 64, 200):
        t = ShotTracker()
        for i in range(0, 200, group):
            t.push_many(h[i:i + group], [0.0] * len(h[i:i + group]), list(range(i, min(i + group, 200))), None,
                        dark[i:i + group])
        kfs = t.finish()
        assert t.boundaries == ref, group
        assert [k.shot for k in kfs] == [(0, ref[0]), (ref[0], 200)], group


@pytest.mark.parametrize("seed", range(3))
def test_the_streamed_rule_equals_the_whole_video_reference(seed):
    """`ShotTracker` (comparisons kept per distance, candidates decided as their neighbourhood
    arrives, any grouping of frames) against `tests/shot_reference.py` on shots with cuts,
    dissolves, flashes and noise; and the same on the histograms of a real edited video."""
    rng = np.random.default_rng(seed)
    starts = sorted({0, *rng.integers(5, 390, 14).tolist()})
    h = _shots(400, starts, seed, noise=0.3)
    for f in rng.integers(10, 390, 3):
        h[f:f + 2] = np.eye(64, dtype=np.float32)[int(f) % 64]
    regions = np.stack([np.roll(h, k, axis=1) for k in range(4)], 1)
    rule = ShotRule(spans=(3, 7))
    ref = shot_reference.boundaries(h, rule, regions)
    assert ref
    for group in (1, 5, 64, 400):
        t = ShotTracker(rule)
        for i in range(0, 400, group):
            t.push_many(h[i:i + group], [0.0] * len(h[i:i + group]), [None] * len(h[i:i + group]), regions[i:i + group])
        t.finish()
        assert t.boundaries == ref, group


def test_the_tracker_picks_a_frame_near_each_shot_centre():
    cuts = [0, 7, 30, 36, 80, 150, 400]
    n = 430
    h = _shots(n, cuts, 3)
    tracker = ShotTracker(max_candidates=8)
    for i in range(n):
        tracker.push(h[i], i / 24, payload=i)
    kfs = tracker.finish()
    assert tracker.boundaries == cuts[1:] == shot_boundaries(h)
    assert [k.shot[0] for k in kfs] == cuts
    for k in kfs:
        a, b = k.shot
        assert a <= k.payload < b
        assert abs(k.payload - (a + b - 1) / 2) <= max(2, (b - a) / 8)    # the held frames are thinned


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
    from featurize.histograms import hsv_bin
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

    from featurize.histograms import yuv_to_rgb
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
    from featurize.histograms import whole_frame, yuv_histograms
    render_trailer(tmp_path / "t.mp4", ["action", "drama"], 4, SampleSpec(min_seconds=5, max_seconds=6))
    with av.open(str(tmp_path / "t.mp4")) as c:
        frames = [f if i < 40 else f.reformat(format="rgb24") for i, f in enumerate(c.decode(video=0))]
    one, one_motion, sampler = ShotTracker(max_candidates=4), MotionMeter(), PlaneSampler(64)
    for i, f in enumerate(frames):
        yuv, full = sampler(f)
        regions = yuv_histograms(yuv.reshape(1, 3, -1), (16, 4, 4), full, sampler.shape, 3)
        one.push(whole_frame(regions, sampler.shape, 3)[0], i / 12, f, regions[0])
        one_motion.push(yuv[0])
    batched, motion = ShotTracker(max_candidates=4), MotionMeter()
    b = FrameBatcher(PlaneSampler(64), batched, motion, (16, 4, 4), size=7)
    for i, f in enumerate(frames):
        b.push(f, i / 12)
    b.flush()
    assert len(one.finish()) > 2 and batched.finish()
    np.testing.assert_array_equal(batched.similarity, one.similarity)
    assert batched.boundaries == one.boundaries
    assert [k.index for k in batched.keyframes] == [k.index for k in one.keyframes]
    assert [k.payload for k in batched.keyframes] == [k.payload for k in one.keyframes]
    assert motion.value == pytest.approx(one_motion.value, rel=1e-12)


def test_compiled_histograms_and_motion_equal_their_definitions():
    """The compiled per-frame passes against the table lookup + bincount they replace, and
    the motion count against plain array arithmetic."""
    from featurize.lowlevel import MotionMeter
    from featurize.histograms import YUV_BITS, _yuv_bin_table, dark_share, yuv_histograms
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
    for full, below in ((False, 38), (True, 26)):        # black: within 10 % of the luma range above black
        np.testing.assert_array_equal(dark_share(yuv[:, 0], full), (yuv[:, 0] < below).mean(1))
    lumas = rng.integers(0, 256, (9, 500), dtype=np.uint8)
    lumas[3] = lumas[2]                                   # a still frame: no active pixels
    m = MotionMeter()
    m.push_many(lumas[:4])
    m.push_many(lumas[4:])
    diffs = np.abs(np.diff(lumas.astype(int), axis=0)) > 0.1 * 255
    assert m.value == pytest.approx(diffs.mean(1).mean(), rel=1e-12)


def test_tracker_keeps_converted_keyframes_only():
    """`keep` converts each keyframe's payload once its shot can no longer split: the same
    keyframes, each converted once, and no original payload left at the end."""
    rng = np.random.default_rng(2)
    shots_colours = rng.dirichlet(np.ones(8), size=6).astype(np.float32)
    hists = np.repeat(shots_colours, [30, 12, 50, 7, 40, 25], axis=0)
    plain, kept = ShotTracker(max_candidates=8), ShotTracker(max_candidates=8, keep=lambda p: ("small", p))
    for i, h in enumerate(hists):
        plain.push(h, i / 24, i)
        kept.push(h, i / 24, i)
    assert len(plain.finish()) == 6
    assert [("small", k.payload) for k in plain.keyframes] == [k.payload for k in kept.finish()]
    # a dissolve decided after the cut that closed its shot (2 s later, the cut 12 frames)
    # splits that shot: the keyframe it replaces is never converted
    h = _shots(320, [0, 40, 100, 170, 190])
    for i, a in enumerate(np.linspace(0, 1, 22)[1:-1]):
        h[150 + i] = (1 - a) * h[149] + a * h[170]
    calls, plain = [], ShotTracker()
    kept = ShotTracker(keep=lambda p: calls.append(p) or ("small", p))
    for t in (plain, kept):
        for i in range(0, len(h), 32):
            t.push_many(h[i:i + 32], [0.0] * 32, list(range(i, i + 32)))
    assert kept.finish() and plain.finish() and 150 < plain.boundaries[2] < 170 and len(plain.keyframes) == 5
    assert calls == sorted(k.payload for k in plain.keyframes)            # each keyframe converted once
    assert [k.payload for k in kept.keyframes] == [("small", k.payload) for k in plain.keyframes]


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
    assert s.found == {"cut": 1, "dissolve": 1, "fade": 1}   # 62: two frames off (missed cut, FP); 79: within 1 of the fade
    assert s.truth == {"cut": 2, "dissolve": 1, "fade": 1} and s.false_positives == 2
    assert s.recall("cut") == 0.5 and s.recall("wipe") is None
    p, r, f = s.prf("cut")
    assert (p, r) == (pytest.approx(1 / 3), 0.5) and f == pytest.approx(2 * p * r / (p + r))
    assert s.prf("gradual")[:2] == (0.5, 1.0)
    assert s.prf("all")[:2] == (3 / 5, 3 / 4)
    assert score(truth, []).prf("all")[:2] == (1.0, 0.0)
    flash = [Transition("flash", 20, 22), Transition("pan", 45, 55)]
    s = score(truth, [11, 21, 23, 35, 50], tol=1, distractors=flash)   # 21, 23: on the flash; 50: in the pan
    assert s.distractor_hits == {"flash": 2, "pan": 1} and s.false_positives == 3
    assert s.row()["false_flash"] == 2 and s.row()["n_pan"] == 1


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


@pytest.mark.slow
def test_real_footage_edits_are_cut_where_they_were_edited(tmp_path_factory):
    """Videos edited from real clips (`benchmarks.real_footage`: hard and jump cuts, dissolves,
    fades, wipes; flashes, pans, zooms and captions inside shots) through the decode pass:
    the boundaries against the edit, and the streamed rule against the whole-video reference
    on a real video's histograms."""
    import av

    from benchmarks.real_footage import real_clips
    from benchmarks.shot_eval import ShotScore, score
    from featurize.config import FeaturizeConfig
    from featurize.extract import decode
    from featurize.frames import PlaneSampler
    from featurize.histograms import dark_share, whole_frame, yuv_histograms
    clips, missing = real_clips(tmp_path_factory.mktemp("real"), n=3, size=(320, 240))
    assert not missing, missing                  # both packages are dev dependencies
    total = ShotScore()
    for path, edit in clips:
        total.add(score(edit.transitions, decode(path, FeaturizeConfig(), audio=False).cuts, 2, edit.distractors))
    row = total.row()
    assert row["all_f1"] >= 0.85 and row["gradual_f1"] >= 0.75, row
    assert row["false_flash"] == 0 and row["n_flash"] >= 10, row          # every flash bridged
    assert min(row[f"recall_{k}"] for k in ("cut", "jump", "dissolve", "fade", "wipe")) >= 0.75, row
    sampler, hists, regions, dark = PlaneSampler(64), [], [], []
    with av.open(clips[0][0]) as c:
        for f in c.decode(video=0):
            yuv, full = sampler.sample(f)
            r = yuv_histograms(yuv[None], (16, 4, 4), full, sampler.shape, 3)
            regions.append(r[0])
            hists.append(whole_frame(r, sampler.shape, 3)[0])
            dark.append(dark_share(yuv[None, 0], full)[0])
    hists, regions, dark = np.stack(hists), np.stack(regions), np.array(dark)
    found = shot_boundaries(hists, regions=regions, dark=dark)
    assert found == shot_reference.boundaries(hists, ShotRule(), regions, dark)
    assert len(found) < len(shot_boundaries(hists, regions=regions))      # fades through black merged

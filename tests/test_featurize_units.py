import numpy as np
import pyarrow.dataset as pads
import pytest
import torch
import torchvision

from featurize.config import BackboneConfig, FeaturizeConfig
from ctt.data import collate_frames
from featurize import store
from featurize.audio import SPEC_SIZE
from featurize.backbone import FrameEmbedder, WeightsUnavailable, check_weights, load_backbone
from featurize.sample_trailers import render_trailer
from featurize.extract import decode


def test_decode_gives_model_sized_keyframes(tmp_path):
    truth = render_trailer(tmp_path / "a.mp4", ["comedy"], 1)
    d = decode(str(tmp_path / "a.mp4"), FeaturizeConfig())
    assert d.keyframes.dtype == np.uint8 and d.keyframes.shape[1:] == (224, 224, 3)
    assert len(d.keyframes) == len(d.frame_times) >= len(truth) - 1
    assert (d.width, d.height, d.fps, d.video_codec) == (192, 108, 12.0, "h264")
    assert np.all(np.diff(d.frame_times) > 0) and d.duration_s == pytest.approx(d.n_frames / 12.0, abs=0.2)


@pytest.mark.parametrize("content", [b"", b"plain text, not a video" * 10])
def test_decode_rejects_non_video(tmp_path, content):
    p = tmp_path / "bad.mp4"
    p.write_bytes(content)
    with pytest.raises(Exception):
        decode(str(p), FeaturizeConfig())


def test_embedder_shapes_and_split_per_trailer():
    emb = FrameEmbedder(BackboneConfig(name="resnet18", weights="none", batch_size=3), device="cpu")
    kfs = [np.random.default_rng(i).integers(0, 255, (n, 224, 224, 3), dtype=np.uint8) for i, n in enumerate((2, 0, 5))]
    batch = {"trailer_id": np.array(["a", "b", "c"]), "keyframes": np.array(kfs, dtype=object)}
    out = emb(batch)
    assert [f.shape for f in out["frames"]] == [(2, 512), (0, 512), (5, 512)]
    np.testing.assert_allclose(out["frames"][2], emb.embed(kfs[2]), rtol=1e-4, atol=1e-5)


def test_checkpoint_with_module_prefix_loads(tmp_path):
    ref = torchvision.models.resnet18(weights=None)
    torch.save({"state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}}, tmp_path / "places.pth")
    model = load_backbone(BackboneConfig(name="resnet18", weights="checkpoint", checkpoint=str(tmp_path / "places.pth")))
    torch.testing.assert_close(model.conv1.weight, ref.conv1.weight)
    with pytest.raises(WeightsUnavailable):
        load_backbone(BackboneConfig(name="resnet18", weights="checkpoint", checkpoint=str(tmp_path / "missing.pth")))
    with pytest.raises(WeightsUnavailable):
        load_backbone(BackboneConfig(name="resnet18", weights="checkpoint", checkpoint=""))


def test_store_round_trip_with_plain_pyarrow(tmp_path):
    rows = [store.trailer_row(4, trailer_id=f"t{i}", split="train", genres=["drama"],
                              frames=np.full((n, 4), i, np.float32), frame_times=np.arange(n, dtype=np.float32),
                              shot_starts=np.arange(n, dtype=np.int32), duration_s=1.0, n_frames=10, fps=24.0,
                              width=8, height=8, video_codec="h264", source_path="x",
                              spectrograms=np.full((i, SPEC_SIZE), i, np.float16), has_audio=i > 0,
                              sample_rate=48000, audio_codec="aac", vllf=np.arange(5, dtype=np.float32),
                              av=np.arange(7, dtype=np.float32))
            for i, n in enumerate((3, 1, 6))]
    store.write_atomic(store.features_table(rows, 4), str(tmp_path))
    store.write_atomic(store.features_table(rows, 4), str(tmp_path))      # same ids: same file, no duplicates
    t = pads.dataset(str(tmp_path)).to_table()
    assert t.num_rows == 3 and not list((tmp_path / "_tmp").iterdir())
    t = t.sort_by("trailer_id")
    b = collate_frames(t, min_len=3)
    assert b["x"].shape == (3, 6, 4) and b["lengths"].tolist() == [3, 1, 6]
    assert b["x"][1, 0].tolist() == [1.0] * 4 and b["x"][1, 1:].abs().sum() == 0
    assert store.done_ids(str(tmp_path)) == {"t0", "t1", "t2"}
    spec = t.column("spectrograms").to_pylist()
    assert [len(s) for s in spec] == [0, 1, 2] and spec[2][1][:3] == [2.0, 2.0, 2.0]
    assert t.schema.field("spectrograms").type.value_type.value_type == "halffloat"
    assert t.column("num_keyframes").to_pylist() == [3, 1, 6] and t.column("num_windows").to_pylist() == [0, 1, 2]
    assert t.schema == store.store_schema(4)


def test_store_row_is_one_definition():
    """Every writer fills the same row: defaults for what a source lacks, no unknown names."""
    row = store.trailer_row(8, trailer_id="a")
    assert tuple(row) == store.COLUMNS == tuple(store.store_schema(8).names)
    assert row["frames"].shape == (0, 8) and row["spectrograms"].shape == (0, SPEC_SIZE) and row["genres"] == []
    with pytest.raises(KeyError, match="path"):
        store.trailer_row(8, trailer_id="a", path="x.mp4")
    t = store.features_table([row], 8)
    assert t.num_rows == 1 and t.column("num_keyframes")[0].as_py() == 0


def test_featurizer_settings_round_trip():
    from featurize.config import ShotConfig
    from featurize.settings import NotReproducible, from_settings, to_settings
    cfg = FeaturizeConfig(backbone=BackboneConfig(name="resnet18", weights="none", batch_size=7),
                          shots=ShotConfig(hard_change=0.5, spans=[3, 9]), max_keyframes=12)
    recorded = {"version": store.FEATURIZER_VERSION, "settings": to_settings(cfg)}
    again = from_settings(recorded, FeaturizeConfig(trailers_per_batch=9))
    assert to_settings(again) == to_settings(cfg)
    assert again.trailers_per_batch == 9 and again.backbone.batch_size == 64      # runtime knobs from the base
    # a store recorded before fades through black were merged is reproduced without the merge
    older = {k: v for k, v in recorded["settings"]["shots"].items() if k not in ("black_gap", "black_share")}
    assert from_settings({"settings": recorded["settings"] | {"shots": older}}).shots.black_gap == 0
    assert again.shots.black_gap == ShotConfig().black_gap > 0
    with pytest.raises(NotReproducible, match="cannot be recomputed"):
        from_settings({"settings": {"feature_dim": 2048, "backbone": {"name": "resnet152", "weights": "lmtd9-release"}}})


def test_store_refuses_other_settings(tmp_path):
    store.claim(str(tmp_path), {"backbone": "resnet18"})
    store.claim(str(tmp_path), {"backbone": "resnet18"})
    with pytest.raises(store.StoreMismatch, match="backbone"):
        store.claim(str(tmp_path), {"backbone": "resnet152"})


def test_samples_are_deterministic_by_seed(tmp_path):
    from featurize.sample_trailers import SampleSpec, make_samples
    spec = SampleSpec(min_seconds=2, max_seconds=3)
    a = make_samples(tmp_path / "a", 4, seed=5, spec=spec, workers=1)
    b = make_samples(tmp_path / "b", 4, seed=5, spec=spec, workers=2)
    c = make_samples(tmp_path / "c", 4, seed=6, spec=spec, workers=1)
    assert a.equals(b) and not a.equals(c)
    assert set(a.split) <= {"train", "val", "test"}
    assert all(1 <= len(g.split("|")) <= 3 for g in a.genres)
    for rel in a.path:
        da = decode(str(tmp_path / "a" / rel), FeaturizeConfig())
        db = decode(str(tmp_path / "b" / rel), FeaturizeConfig())
        # the same shots and keyframes; pixels within encoder noise (x264 output is not bit-stable run to run)
        assert da.shot_starts == db.shot_starts
        np.testing.assert_array_equal(da.frame_times, db.frame_times)
        assert np.abs(da.keyframes.astype(np.int16) - db.keyframes).mean() < 2.0


def test_imagenet_weights_missing_is_a_clear_error(tmp_path, monkeypatch):
    """No cached weights and no network (a closed local proxy port): a clear error, not a traceback."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    for var in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    with pytest.raises(WeightsUnavailable, match="ImageNet weights for resnet18.*checkpoints"):
        load_backbone(BackboneConfig(name="resnet18", weights="imagenet"))
    with pytest.raises(WeightsUnavailable, match="checkpoints"):          # the job's check before any work
        check_weights(BackboneConfig(name="resnet18", weights="imagenet"))
    staged = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    staged.parent.mkdir(parents=True, exist_ok=True)
    staged.write_bytes(b"staged")                   # the actors load it; the driver builds no network to know
    check_weights(BackboneConfig(name="resnet18", weights="imagenet"))


def test_ten_crop_averages_corners_centre_and_flips():
    from featurize.backbone import ten_crops
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).view(2, 3, 6, 6)
    crops = ten_crops(x, 4)
    assert crops.shape == (10, 2, 3, 4, 4)
    torch.testing.assert_close(crops[0], x[..., :4, :4])
    torch.testing.assert_close(crops[4], x[..., 1:5, 1:5])
    torch.testing.assert_close(crops[9], x[..., 1:5, 1:5].flip(-1))
    cfg = BackboneConfig(name="resnet18", weights="none", ten_crop=True, batch_size=20)
    emb = FrameEmbedder(cfg, device="cpu")
    imgs = np.random.default_rng(0).integers(0, 255, (3, 256, 256, 3), dtype=np.uint8)
    xs = (torch.from_numpy(imgs).permute(0, 3, 1, 2).float() - emb.mean) / emb.std
    with torch.no_grad():
        ref = emb.model(ten_crops(xs, 224).flatten(0, 1)).view(10, 3, -1).mean(0).numpy()
    np.testing.assert_allclose(emb.embed(imgs), ref, rtol=1e-4, atol=1e-5)


def test_keyframe_cap_and_ten_crop_size(tmp_path):
    from featurize.shots import subsample
    assert subsample(10, 0).tolist() == list(range(10)) and subsample(3, 5).tolist() == [0, 1, 2]
    assert subsample(10, 4).tolist() == [0, 3, 6, 9]
    render_trailer(tmp_path / "a.mp4", ["action"], 2)
    full = decode(str(tmp_path / "a.mp4"), FeaturizeConfig())
    cfg = FeaturizeConfig(max_keyframes=3)
    cfg.backbone.ten_crop = True
    capped = decode(str(tmp_path / "a.mp4"), cfg)
    assert len(full.keyframes) > 3 and capped.keyframes.shape == (3, 256, 256, 3)
    assert set(capped.frame_times.tolist()) <= set(full.frame_times.tolist())


def test_float16_storage_cast_is_numpys_bit_for_bit():
    from featurize import store
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=4000) * 10.0 ** rng.integers(-9, 6, 4000),      # subnormal to overflow
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 65504.0, 65520.0, 6e-8, 2.9e-8]]).astype(np.float32)
    with np.errstate(over="ignore"):
        want = x.astype(np.float16)
    got = store.to_float16(x.reshape(1, -1))[0]
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got.view(np.uint16)[~np.isnan(x)], want.view(np.uint16)[~np.isnan(x)])
    assert np.isnan(got[np.isnan(x)]).all()


def test_keyframes_are_area_averaged_rgb(tmp_path):
    """Keyframes come out of swscale as planar RGB (its fast path): an area average of the
    full-resolution RGB frame, then the centre crop, for the pixel formats trailers arrive
    in, scaled down (360 -> 256 and 110 rows) and up (-> 400 rows); for the ImageNet size
    from 640x360 it is exactly the packed rgb24 conversion."""
    import av
    import torch.nn.functional as F

    from featurize.sample_trailers import SampleSpec
    from featurize.frames import keyframe_array
    render_trailer(tmp_path / "t.mp4", ["action"], 2, SampleSpec(width=640, height=360, min_seconds=1, max_seconds=1.2))
    with av.open(str(tmp_path / "t.mp4")) as c:
        frame = [f for i, f in enumerate(c.decode(video=0)) if i == 10][0]
    for fmt in ("yuv420p", "yuvj420p", "yuv444p", "nv12", "yuv420p10le", "rgb24"):
        f = frame.reformat(format=fmt)
        rgb = torch.from_numpy(f.to_ndarray(format="rgb24").astype(np.float32)).permute(2, 0, 1)[None]
        for size, short in ((224, 256), (96, 110), (384, 400)):
            nw, nh = max(size, round(f.width * short / f.height)), short
            mode = "area" if short < f.height else "bilinear"
            ref = F.interpolate(rgb, size=(nh, nw), mode=mode)[0].permute(1, 2, 0).numpy()
            top, left = (nh - size) // 2, (nw - size) // 2
            got = keyframe_array(f, size, short)
            assert got.shape == (size, size, 3) and got.dtype == np.uint8 and got.flags.c_contiguous
            err = np.abs(got - ref[top:top + size, left:left + size])
            assert err.mean() < 2.5 and np.percentile(err, 99) < 12, (fmt, size, err.mean(), np.percentile(err, 99))
        packed = f.to_ndarray(format="rgb24", width=455, height=256, interpolation="AREA")[16:240, 115:339]
        np.testing.assert_array_equal(keyframe_array(f, 224, 256), packed, err_msg=fmt)


def test_imagenet_weights_are_the_papers_v1_with_their_own_resize():
    from featurize.config import FeaturizeConfig
    from featurize.settings import to_settings
    from featurize.backbone import keyframe_geometry
    from featurize.backbone_families.torchvision_family import weights_enum
    v1, v2 = BackboneConfig(name="resnet152"), BackboneConfig(name="resnet152", weights="imagenet_v2")
    assert weights_enum(v1.name, v1.weights).name == "IMAGENET1K_V1"
    assert weights_enum(v2.name, v2.weights).name == "IMAGENET1K_V2"
    assert v1.weights == "imagenet"                                      # the default is the paper's
    cfg = FeaturizeConfig()
    assert (keyframe_geometry(cfg.backbone).short, keyframe_geometry(cfg.backbone).size) == (256, 224)
    cfg.backbone = v2
    assert (keyframe_geometry(cfg.backbone).short, keyframe_geometry(cfg.backbone).size) == (232, 224)  # V2's transform
    assert to_settings(cfg)["backbone_weights"] == "IMAGENET1K_V2" and to_settings(cfg)["resize"] == 232
    with pytest.raises(WeightsUnavailable, match="IMAGENET1K_V1"):      # offline: names the file to place
        load_backbone(BackboneConfig(name="resnet152", weights="imagenet"))
    with pytest.raises(WeightsUnavailable, match="no IMAGENET1K_V2"):
        weights_enum("resnet18", "imagenet_v2")


def test_dry_run_plans_without_writing(tmp_path):
    import pandas as pd

    from featurize.pipeline import run_featurize
    from featurize.plan import MAX_BLOCKS
    n = MAX_BLOCKS + 500
    pd.DataFrame({"trailer_id": [f"t{i}" for i in range(n)], "path": [f"videos/t{i}.mp4" for i in range(n)],
                  "genres": "drama", "split": "train"}).to_csv(tmp_path / "m.csv", index=False)
    out = tmp_path / "store"
    plan = run_featurize(str(tmp_path / "m.csv"), str(out), FeaturizeConfig(), dry_run=True)
    assert plan["dry_run"] and plan["to_do"] == n and plan["blocks"] == MAX_BLOCKS
    assert plan["driver_peak_rss_mb"] > 50 and not out.exists()          # nothing written, not even settings
    store.claim(str(out), {"other": 1})
    with pytest.raises(store.StoreMismatch):                             # ... but the store is checked
        run_featurize(str(tmp_path / "m.csv"), str(out), FeaturizeConfig(), dry_run=True)


def test_shot_detector_auto_takes_the_learned_one_only_on_gpus(tmp_path):
    import dataclasses

    import pandas as pd

    from featurize import shot_detectors
    from featurize.config import ShotConfig, validate_featurize as check
    from featurize.pipeline import run_featurize
    assert shot_detectors.resolve("auto", gpu=False) == "hsv"
    assert shot_detectors.resolve("auto", gpu=True) == "transnetv2"         # installed with the dev extra
    assert shot_detectors.resolve("hsv", gpu=True) == "hsv"
    with pytest.raises(ValueError, match="resolved per cluster"):
        shot_detectors.get("auto")
    auto = FeaturizeConfig(shots=ShotConfig(detector="auto"))
    check(auto)
    with pytest.raises(Exception, match="expected hsv or transnetv2 or auto"):
        check(dataclasses.replace(auto, shots=ShotConfig(detector="hsv2")))
    pd.DataFrame({"trailer_id": ["a"], "path": ["a.mp4"], "genres": "drama", "split": "train"}).to_csv(
        tmp_path / "m.csv", index=False)
    plan = run_featurize(str(tmp_path / "m.csv"), str(tmp_path / "store"), auto, dry_run=True)
    assert plan["shot_detector"] == "hsv"                 # a dry run plans for CPU actors


def test_av_descriptors_are_an_optional_stage(tmp_path):
    from featurize.extract import decode_row
    from featurize.lowlevel import AV_NAMES, VLLF_NAMES
    from featurize.settings import from_settings, to_settings
    render_trailer(tmp_path / "a.mp4", ["action"], 3)
    row = {"trailer_id": "a", "path": str(tmp_path / "a.mp4"), "split": "train", "genres": ["action"]}
    full = decode_row(row, FeaturizeConfig())
    lean_cfg = FeaturizeConfig(av=False)
    lean = decode_row(row, lean_cfg)
    assert len(full["av"]) == len(AV_NAMES) and len(lean["av"]) == 0
    np.testing.assert_array_equal(lean["vllf"], full["vllf"])                   # the rest is the same
    np.testing.assert_array_equal(lean["spectrograms"], full["spectrograms"])
    assert len(lean["vllf"]) == len(VLLF_NAMES)
    assert to_settings(lean_cfg)["av_names"] == [] and to_settings(FeaturizeConfig())["av_names"] == list(AV_NAMES)
    assert from_settings(to_settings(lean_cfg)).av is False and from_settings(to_settings(FeaturizeConfig())).av


def test_genres_are_read_in_any_case_and_common_spellings():
    from featurize.genres import GENRES, parse_genres
    assert parse_genres("Sci-Fi|DRAMA| science fiction ") == ["scifi", "drama"]
    assert parse_genres(["Thriller", "romantic", "Crime"]) == ["thriller", "romance", "crime"]
    assert parse_genres("") == [] and parse_genres(None) == []
    with pytest.raises(ValueError, match="unknown genre.*'western'.*" + ", ".join(GENRES)):
        parse_genres("western|drama")

"""Where the field varies, a new variant is one declaration and one registry line: a toy shot
detector and a toy backbone family, declared in this file, run through featurize as the
shipped ones do (the decode pass keeps the detector's frames, the embedder's step places
its shots, the store's settings record both, a served model asks for their packages)."""
import numpy as np
import pytest
import torch
from torch import nn

from ctt import serving
from featurize import store
from featurize.backbone import FrameEmbedder, feature_dim, keyframe_geometry
from featurize.backbone_families import FAMILIES
from featurize.backbone_families.base import BackboneFamily, Preprocess
from featurize.config import BackboneConfig, ConfigError, FeaturizeConfig, ShotConfig, validate_featurize
from featurize.extract import extract
from featurize.sample_trailers import SampleSpec, render_trailer
from featurize.settings import from_settings, to_settings
from featurize.shot_detectors import DETECTORS
from featurize.shot_detectors.base import HSV_FIELDS, ShotDetector

JUMP = 0.08          # mean colour change between two frames (of 1.0) that the toy detector calls a cut


class ColourJumps:
    """Frame i is 'in a transition' when the mean colour changes by more than JUMP from i to
    i + 1, so a new shot starts at i + 1."""

    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        mean = frames.reshape(len(frames), -1, 3).mean(1) / 255.0          # (n, 3)
        change = np.abs(np.diff(mean, axis=0)).sum(1)
        return np.r_[change > JUMP, False].astype(np.float32)


class ToyDetector(ShotDetector):
    name = "toy-colour-jumps"
    settings_fields = ("detector", "transnet_threshold", *HSV_FIELDS)
    frame_size = (9, 16)
    requirement = "packaging"

    def threshold(self, shots) -> float:
        return shots.transnet_threshold

    def load(self, device: str) -> ColourJumps:
        return ColourJumps()


class ToyFamily(BackboneFamily):
    """`toy:pool<k>`: average-pool each channel to k x k; its features are those k * k * 3 means."""
    name = "toy"
    requirement = "tqdm"
    pretrained_weights = ()

    def preprocess(self, model, cfg) -> Preprocess:
        return Preprocess(resize=40, crop=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))

    def build(self, model, cfg, pretrained) -> nn.Module:
        return nn.Sequential(nn.AdaptiveAvgPool2d(int(model.removeprefix("pool"))), nn.Flatten())


@pytest.fixture
def toys(monkeypatch):
    monkeypatch.setitem(DETECTORS, ToyDetector.name, ToyDetector())           # the one registry line each
    monkeypatch.setitem(FAMILIES, ToyFamily.name, ToyFamily())
    return FeaturizeConfig(backbone=BackboneConfig(name="toy:pool4", weights="none"),
                           shots=ShotConfig(detector=ToyDetector.name, candidates=512))


def test_a_toy_detector_and_family_run_through_featurize(toys, tmp_path):
    cfg = toys
    validate_featurize(cfg)                                                   # a known detector now
    starts = render_trailer(tmp_path / "a.mp4", ["action"], 1, SampleSpec(min_seconds=8, max_seconds=10))
    emb = FrameEmbedder(cfg.backbone, "cpu")
    table, failed = extract([{"trailer_id": "a", "path": str(tmp_path / "a.mp4"), "split": "train",
                              "genres": ["action"]}], cfg, emb)
    assert not failed and table.num_rows == 1
    row = table.to_pylist()[0]
    # the family: its crop and its feature length, the network's own output on the stored keyframes
    assert keyframe_geometry(cfg.backbone).size == 32 and feature_dim(cfg.backbone) == 4 * 4 * 3
    frames = np.array(row["frames"], np.float32)
    assert frames.shape == (row["num_keyframes"], 48)
    # the detector: one keyframe per shot of the rendered truth (colour jumps are its cuts)
    assert len(starts) > 2 and row["shot_starts"] == starts, (row["shot_starts"], starts)
    # what made the store is recorded and rebuilds the config; the served model asks for both packages
    settings = to_settings(cfg)
    assert settings["shots"]["detector"] == ToyDetector.name and settings["preprocess"]["crop"] == 32
    assert set(settings["shots"]) == set(ToyDetector.settings_fields)
    again = from_settings(store.document(settings))
    assert (again.shots.detector, again.backbone.name) == (ToyDetector.name, "toy:pool4")
    needs = {r.split("==")[0] for r in serving.requirements(store.document(settings))}
    assert {"packaging", "tqdm"} <= needs


def test_the_toy_family_embeds_with_its_own_normalisation(toys):
    emb = FrameEmbedder(toys.backbone, "cpu")
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), np.uint8)
    x = (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.25
    want = nn.AdaptiveAvgPool2d(4)(x).flatten(1).numpy()
    np.testing.assert_allclose(emb.embed(images), want, rtol=1e-5, atol=1e-5)


def test_an_unregistered_detector_is_a_config_error():
    with pytest.raises(ConfigError, match="shots.detector: expected hsv or transnetv2"):
        validate_featurize(FeaturizeConfig(shots=ShotConfig(detector=ToyDetector.name)))

"""Backbones beyond the paper's ResNet: any torchvision classifier, timm and open_clip image
towers, each with its own preprocessing and feature length, built with random weights (no
download) and carried through the store."""
import numpy as np
import pyarrow.dataset as pads
import pytest
import torch
import torchvision

from featurize import store
from featurize.backbone import FrameEmbedder, feature_dim, load_backbone, preprocess
from featurize.backbone_families import family_of
from featurize.config import BackboneConfig, FeaturizeConfig
from featurize.extract import extract
from featurize.settings import from_settings, to_settings
from featurize.sample_trailers import SampleSpec, render_trailer

timm = pytest.importorskip("timm")
open_clip = pytest.importorskip("open_clip")


def _out(cfg: BackboneConfig) -> torch.Tensor:
    pre = preprocess(cfg)
    return load_backbone(cfg)(torch.rand(2, 3, pre.crop, pre.crop))


def test_any_torchvision_classifier_gives_its_penultimate_features():
    cfg = BackboneConfig(name="mobilenet_v3_small", weights="none")
    ref = torchvision.models.mobilenet_v3_small(weights=None)
    assert ref.classifier[-1].in_features == 1024 == feature_dim(cfg) == _out(cfg).shape[-1]
    # the weights' own eval transform: ConvNeXt resizes to 236 for its 224 crop
    enum = torchvision.models.ConvNeXt_Tiny_Weights.IMAGENET1K_V1.transforms()
    pre = preprocess(BackboneConfig(name="convnext_tiny", weights="imagenet"))
    assert (pre.resize, pre.crop) == (enum.resize_size[0], enum.crop_size[0]) == (236, 224)
    assert pre.mean == tuple(enum.mean) and pre.std == tuple(enum.std)
    with pytest.raises(ValueError, match="not a torchvision classification model"):
        load_backbone(BackboneConfig(name="fasterrcnn_resnet50_fpn", weights="none"))


def test_timm_model_uses_its_pretrained_config():
    cfg = BackboneConfig(name="timm:vit_tiny_patch16_224", weights="none")
    pc = timm.models.get_pretrained_cfg("vit_tiny_patch16_224")
    pre = preprocess(cfg)
    assert pre.crop == pc.input_size[-1] == 224 and pre.resize == int(224 / pc.crop_pct)
    assert pre.mean == tuple(pc.mean) == (0.5, 0.5, 0.5) and pre.std == tuple(pc.std)
    ref = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0)
    assert feature_dim(cfg) == ref.num_features == 192 == _out(cfg).shape[-1]
    fam, model = family_of(cfg.name)
    assert (fam.name, fam.requirement, model) == ("timm", "timm", "vit_tiny_patch16_224")


def test_open_clip_image_tower_uses_clip_normalisation():
    cfg = BackboneConfig(name="open_clip:ViT-B-32/openai", weights="none")
    pre = preprocess(cfg)
    assert (pre.resize, pre.crop) == (224, 224)
    assert pre.mean == tuple(open_clip.constants.OPENAI_DATASET_MEAN)
    assert feature_dim(cfg) == open_clip.get_model_config("ViT-B-32")["embed_dim"] == 512 == _out(cfg).shape[-1]
    with pytest.raises(ValueError, match="open_clip:<arch>/<pretrained>"):
        preprocess(BackboneConfig(name="open_clip:ViT-B-32", weights="none"))


def test_a_timm_store_round_trip(tmp_path):
    """Decoded keyframes at the model's crop, normalised with its mean and std, stored at its
    feature length; the store's settings say how, and rebuild the same config."""
    cfg = FeaturizeConfig(backbone=BackboneConfig(name="timm:vit_tiny_patch16_224", weights="none"))
    render_trailer(tmp_path / "a.mp4", ["action"], 1, SampleSpec())
    emb = FrameEmbedder(cfg.backbone, "cpu")
    assert emb.mean.flatten().tolist() == pytest.approx([127.5] * 3)             # (0.5) * 255
    table, failed = extract([{"trailer_id": "a", "path": str(tmp_path / "a.mp4"), "split": "train",
                              "genres": ["action"]}], cfg, emb)
    assert not failed
    settings = to_settings(cfg)
    assert settings["feature_dim"] == 192 and tuple(settings["preprocess"]["mean"]) == (0.5, 0.5, 0.5)
    store.claim(str(tmp_path / "s"), settings)
    store.write_atomic(table, str(tmp_path / "s"))
    got = pads.dataset(str(tmp_path / "s")).to_table()
    frames = np.array(got.column("frames")[0].as_py(), np.float32)
    assert frames.shape[1] == 192 and len(frames) == got.column("num_keyframes")[0].as_py() > 0
    assert from_settings(store.settings_of(str(tmp_path / "s"))).backbone.name == cfg.backbone.name

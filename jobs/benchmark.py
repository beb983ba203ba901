"""Measure each featurizer and training stage against its physical limit, side by side.

    python jobs/benchmark.py [--quick] [--sizes 640x360,1280x720] [--seconds 60] [--out bench.json]

Renders its own trailers (H.264 + AAC at the given sizes, 24 fps), then reports ratios
measured in this one run on this machine:
  decode      featurizer CPU stages (decode + shots + keyframes + spectrograms + low-level)
              vs PyAV decode of every frame: one file alone (best thread setting), and
              one file per core at once (how the pipeline runs)               target <= 1.5
  backbone    the embedder actor's call vs the bare model forward, same keyframes  >= 0.9
  audio       the pipeline's spectrograms vs one bare librosa STFT (and torch.stft)
  train       LSTM vs CTT-MMC-C seconds per epoch on the same features        >= 3
              Ray Train with 1 vs 2 workers, seconds per epoch
  shots real  on videos edited from real footage (benchmarks/real_footage.py: cuts, jump
              cuts, dissolves, fades, wipes; flashes, pans, zooms, captions that are not
              boundaries): ours (in the decode pass), TransNetV2 where installed,
              PySceneDetect's Content and Adaptive detectors, and decoding alone: F1 per
              group, recall per kind, false boundaries per distractor, frames per
              CPU-second                                     >= 1.5 (fps), >= 0.9 of decoding
  shots rendered   the same on rendered trailers (cuts, dissolves, fades)
  diy         featurize vs a do-it-yourself PySceneDetect + PyAV + librosa pipeline
  svm         the AV grid ranked by decision_function vs Platt probabilities
  options     evidence vs scoring; other backbones' keyframes per second
  driver      featurize --dry-run driver peak RSS, 100k vs 10k manifest rows   <= 1.2
  dedup       the near-duplicate search (faiss HNSW, scores, groups) on synthetic shot
              signatures of 1x, 4x and 16x trailers: time, 16x vs 1x   <= 64 (n^1.5; all pairs 256);
              then (not in --quick) cuts of films made of real footage
              (benchmarks/real_recuts.py): precision and recall of the pairs     >= 0.95
  usage       six input mistakes (a missing manifest, a wrong column, a non-store...):
              the slowest job's seconds to its one line and exit 2          <= 2 s
  memory      featurize peak worker RSS for 4N vs N trailers (streaming)       <= 1.2
  end to end  trailers and video hours per hour per core, and the cost of LMTD-9
              (4,007 trailers) and of 100,000 trailers on --cluster-cpus cores
--quick (for CI) uses tiny sizes and skips the Ray Train comparison (a minute per run; the
training path is covered by the tests): it checks that every other measurement runs.

    python jobs/benchmark.py --suite shots [--quick] [--out shots.json]

The shot rows alone (a few minutes): to choose a detector with numbers.

    python jobs/benchmark.py --suite gpu [--quick] [--skip featurize] [--out gpu.json]

The GPU suite (benchmarks/gpu_suite.py), one table in under 8 minutes on one GPU: ResNet-152
embedder (bf16 + channels_last) vs the bare forward and the device's matmul rate; CTT-MMC-C
vs LSTM per epoch at LMTD-9 size; torch.stft on the device vs the CPU paths; TransNetV2
(shots.detector=transnetv2) on the device vs the CPU; featurize end to end with GPU actors,
spectrograms in decode tasks vs on the actors. It runs on CPU too.
"""
from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jobs._common  # noqa: E402,F401  (safe Ray / MLflow environment defaults)


def _sizes(text: str) -> list[tuple[int, int]]:
    try:
        return [tuple(int(v) for v in s.lower().split("x")) for s in text.split(",") if s]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes wants WxH[,WxH...], got {text!r}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--suite", choices=("cpu", "gpu", "shots"), default="cpu",
                   help="cpu: every stage against its limit (default); gpu: the accelerator's claims; "
                        "shots: the shot detectors alone, on real footage and rendered trailers")
    p.add_argument("--skip", default="", help="gpu suite: comma-separated sections to leave out "
                   "(embedder, train, stft, shots, featurize)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that every measurement runs (CI)")
    p.add_argument("--sizes", type=_sizes, default=None, help="trailer sizes, e.g. 640x360,1280x720")
    p.add_argument("--seconds", type=float, default=None, help="length of each benchmark trailer")
    p.add_argument("--fps", type=int, default=24)
    p.add_argument("--per-size", type=int, default=1, help="trailers per size")
    p.add_argument("--repeat", type=int, default=None, help="timed repetitions (best is kept)")
    p.add_argument("--backbone", default="resnet152", help="backbone of the backbone-stage comparison")
    p.add_argument("--keyframes", type=int, default=None, help="keyframes in the backbone comparison (0: all)")
    p.add_argument("--e2e-backbone", default="resnet18", help="backbone of the end-to-end and memory runs")
    p.add_argument("--n", type=int, default=None, help="trailers of the small memory run (the big one is 4x); enough for every embedder actor to see full batches")
    p.add_argument("--train-trailers", type=int, default=None)
    p.add_argument("--train-epochs", type=int, default=2)
    p.add_argument("--ray-trailers", type=int, default=None)
    p.add_argument("--ray-epochs", type=int, default=None)
    p.add_argument("--cluster-cpus", type=int, default=256, help="cluster size for the 100k-trailer estimate")
    p.add_argument("--work", default=None, help="folder for trailers and stores (default: a temp folder)")
    p.add_argument("--out", default="benchmark.json", help="JSON results")
    a = p.parse_args(argv)
    from benchmarks import entry  # lazy: --help answers without the measurement code
    return {"gpu": entry.gpu_suite, "shots": entry.shots_suite}.get(a.suite, entry.cpu_suite)(a)


if __name__ == "__main__":
    sys.exit(main())

"""The paper's test results on LMTD-9 (772 trailers): Table 3 and Table 4, for reference
beside a reproduction's numbers. Keys are the methods' names in this project."""
from __future__ import annotations

METHOD_ORDER = ("random", "vllf", "av", "lstm", "ctt-s", "ctt-a", "ctt-b", "ctt-c", "ctt-tn")
METHOD_LABEL = {"random": "Random", "vllf": "VLLF", "av": "AV", "lstm": "LSTM", "ctt-s": "CTT-MMC-S",
                "ctt-a": "CTT-MMC-A", "ctt-b": "CTT-MMC-B", "ctt-c": "CTT-MMC-C", "ctt-tn": "CTT-MMC-TN",
                "probe-frames": "Probe (frames)", "probe-spectrograms": "Probe (audio)",
                "probe-both": "Probe (both)", "probe-av": "Probe (AV)", "probe-vllf": "Probe (VLLF)"}
# Beyond the paper: the linear probe on the same input as each model (`ctt.probe`)
PROBE_OF = {"ctt-a": "probe-frames", "ctt-b": "probe-frames", "ctt-c": "probe-frames", "lstm": "probe-frames",
            "ctt-s": "probe-spectrograms", "ctt-tn": "probe-both", "av": "probe-av", "vllf": "probe-vllf"}

# method -> (macro AU(PRC), micro AU(PRC), weighted AU(PRC), ranking loss)
TABLE3: dict[str, tuple[float, float, float, float]] = {
    "random": (0.206, 0.204, 0.294, 0.466),
    "vllf": (0.278, 0.476, 0.386, 0.253),
    "av": (0.455, 0.599, 0.567, 0.159),
    "lstm": (0.520, 0.640, 0.590, 0.150),
    "ctt-s": (0.485, 0.642, 0.599, 0.183),
    "ctt-a": (0.618, 0.712, 0.683, 0.109),
    "ctt-b": (0.599, 0.704, 0.680, 0.121),
    "ctt-c": (0.624, 0.722, 0.697, 0.108),
    "ctt-tn": (0.646, 0.742, 0.724, 0.099),
}
TABLE3_MEASURES = ("auprc_macro", "auprc_micro", "auprc_weighted", "ranking_loss")

# method -> per-genre AU(PRC) in GENRES order
TABLE4: dict[str, tuple[float, ...]] = {
    "ctt-c": (0.813, 0.720, 0.853, 0.505, 0.791, 0.609, 0.432, 0.398, 0.496),
    "ctt-s": (0.669, 0.397, 0.834, 0.339, 0.764, 0.390, 0.362, 0.226, 0.386),
    "ctt-tn": (0.835, 0.672, 0.870, 0.547, 0.841, 0.667, 0.456, 0.401, 0.522),
    "lstm": (0.687, 0.573, 0.792, 0.421, 0.740, 0.478, 0.313, 0.237, 0.437),
    "av": (0.601, 0.461, 0.838, 0.215, 0.792, 0.423, 0.256, 0.161, 0.308),
    "random": (0.158, 0.131, 0.512, 0.140, 0.435, 0.088, 0.129, 0.063, 0.196),
}

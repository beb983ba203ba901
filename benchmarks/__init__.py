"""Measurement tooling for `jobs/benchmark.py`: stage costs, shot detectors against truth and
against PySceneDetect, training speed, the GPU suite. Above the library: nothing in
`featurize`, `ctt` or `cluster` imports it (tests/test_architecture.py)."""

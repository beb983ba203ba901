"""The map of the code (docs/architecture.md), checked: imports run one way down (jobs ->
benchmarks -> ctt -> featurize; cluster apart), the pure core of a package never reaches
into its experiment room, Ray and MLflow only behind their doors, imports at the top of
modules unless a comment says why, and no block of six or more lines standing twice.

Each rule is a function over {path: source}, so the rules are tested on planted leaks
as well as on the tree itself.
"""
from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cluster", "featurize", "ctt", "benchmarks", "jobs")
# What each package may import of the others (itself always). Measurement tooling sits above
# the library: nothing below `benchmarks` may import it.
MAY_IMPORT = {"featurize": set(), "ctt": {"featurize"}, "benchmarks": {"ctt", "featurize", "cluster"},
              "jobs": {"ctt", "featurize", "cluster", "benchmarks"}, "cluster": set()}
# Rooms inside a package: the module prefix that only files under the folder may import.
# The model core of ctt (config, layers, models, data, training, metrics...) runs without Ray
# or MLflow; the experiment layer runs it on Ray and records it.
ROOMS = {"ctt/experiment/": "ctt.experiment"}
# Modules that must not import these (directly): decoding knows nothing of the backbone.
KEPT_APART = {("featurize/video.py", "featurize/containers.py", "featurize/timeline.py", "featurize/frames.py",
               "featurize/audio_decode.py", "featurize/shots.py", "featurize/histograms.py"):
              ("featurize.backbone", "featurize.backbone_families", "torch")}
DOORS = {
    "ray": ("featurize/pipeline.py", "ctt/experiment/distributed/", "jobs/", "cluster/"),
    "mlflow": ("ctt/experiment/tracking/",),
}
LAZY = re.compile(r"#.*\blazy:")        # the comment an import inside a function must carry
MIN_LINES = 6


def sources() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text() for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imports(source: str) -> list[tuple[str, int, bool]]:
    """(module, line, inside a function or class) of every import statement."""
    out = []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno, nested) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                out.append((child.module, child.lineno, nested))
            visit(child, nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)))
    visit(ast.parse(source), False)
    return out


def direction_violations(files: dict[str, str]) -> list[str]:
    bad = []
    for path, src in files.items():
        pkg = path.split("/")[0]
        for module, line, _ in _imports(src):
            top = module.split(".")[0]
            if top in PACKAGES and top != pkg and top not in MAY_IMPORT[pkg]:
                bad.append(f"{path}:{line} imports {module} ({pkg} may import {sorted(MAY_IMPORT[pkg]) or 'nothing'})")
    return bad


def room_violations(files: dict[str, str]) -> list[str]:
    bad = []
    for path, src in files.items():
        for folder, room in ROOMS.items():
            if path.startswith(folder) or not path.startswith(folder.split("/")[0] + "/"):
                continue
            for module, line, _ in _imports(src):
                if module == room or module.startswith(room + "."):
                    bad.append(f"{path}:{line} imports {module}; only {folder} may (the core stays free of it)")
    return bad


def apart_violations(files: dict[str, str]) -> list[str]:
    bad = []
    for paths, banned in KEPT_APART.items():
        for path in paths:
            for module, line, _ in _imports(files.get(path, "")):
                if any(module == b or module.startswith(b + ".") for b in banned):
                    bad.append(f"{path}:{line} imports {module}, which it is kept apart from")
    return bad


def door_violations(files: dict[str, str]) -> list[str]:
    bad = []
    for path, src in files.items():
        for module, line, _ in _imports(src):
            top = module.split(".")[0]
            if top in DOORS and not path.startswith(DOORS[top]):
                bad.append(f"{path}:{line} imports {module}; only {', '.join(DOORS[top])} may")
    return bad


def nested_import_violations(files: dict[str, str]) -> list[str]:
    bad = []
    for path, src in files.items():
        lines = src.splitlines()
        for module, line, nested in _imports(src):
            above = line - 2                 # the comment may head a run of imports
            while above >= 0 and lines[above].strip().startswith(("import ", "from ")):
                above -= 1
            said = LAZY.search(lines[line - 1]) or (above >= 0 and LAZY.search(lines[above]))
            if nested and not said:
                bad.append(f"{path}:{line} imports {module} inside a function without a `# lazy: why` comment")
    return bad


def _significant(src: str) -> list[tuple[int, str]]:
    """(line number, folded text) of the lines that carry code: no blanks, comments, imports or
    lone punctuation."""
    out = []
    for i, raw in enumerate(src.splitlines(), 1):
        s = " ".join(raw.split())
        if not s or s.startswith(("#", "import ", "from ")) or not re.search(r"\w", s):
            continue
        out.append((i, s))
    return out


def repeated_blocks(files: dict[str, str], n: int = MIN_LINES) -> list[str]:
    """Runs of n significant lines that stand, identical, at two places."""
    where: dict[tuple[str, ...], list[tuple[str, int]]] = defaultdict(list)
    for path, src in files.items():
        lines = _significant(src)
        for k in range(len(lines) - n + 1):
            where[tuple(t for _, t in lines[k:k + n])].append((path, lines[k][0]))
    bad = []
    for places in where.values():
        first = places[0]
        others = [p for p in places[1:] if p[0] != first[0] or abs(p[1] - first[1]) >= n]
        if others:
            bad.append(f"{first[0]}:{first[1]} stands again at {others[0][0]}:{others[0][1]}")
    return bad


RULES = [direction_violations, room_violations, apart_violations, door_violations, nested_import_violations, repeated_blocks]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_the_tree_keeps_the_rule(rule):
    assert rule(sources()) == []


PLANTED = {
    direction_violations: {"featurize/store.py": "from ctt.config import Config\n",
                           "ctt/data.py": "import jobs._common\n", "cluster/local.py": "from ctt.experiment import report\n",
                           "ctt/metrics.py": "from benchmarks import suite\n",
                           "featurize/video.py": "from benchmarks.shot_eval import score\n"},
    room_violations: {"ctt/models.py": "from ctt.experiment.tracking import recording\n",
                      "ctt/training.py": "import ctt.experiment.distributed.checkpoints\n"},
    apart_violations: {"featurize/video.py": "from featurize.backbone import preprocess\n",
                       "featurize/frames.py": "import torch\n"},
    door_violations: {"ctt/experiment/baselines.py": "def f():\n    import ray  # lazy: planted\n",
                      "ctt/experiment/report.py": "from mlflow import MlflowClient\n",
                      "benchmarks/suite.py": "import ray.data\n", "ctt/training.py": "import mlflow\n"},
    nested_import_violations: {"ctt/experiment/classify.py": "def f():\n    from featurize.store import read_table\n"},
    repeated_blocks: {"a/x.py": "\n".join(f"v{i} = f({i})" for i in range(7)),
                      "a/y.py": "w = 0\n" + "\n".join(f"v{i} = f({i})" for i in range(1, 7))},
}


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_the_rule_catches_a_planted_leak(rule):
    found = rule(PLANTED[rule])
    assert len(found) == (len(PLANTED[rule]) if rule is not repeated_blocks else 1), found


def test_allowed_imports_and_explained_lazy_imports_pass():
    ok = {"ctt/data.py": "from featurize import store\n",
          "jobs/train.py": "import ray\nfrom ctt.experiment.tracking import recording\n",
          "ctt/experiment/method_runs.py": "from ctt import metrics\nfrom ctt.experiment.tracking import reading\n",
          "benchmarks/suite.py": "from ctt.models import build_model\nfrom cluster.session import local_ray\n",
          "cluster/node.py": "def main():\n    # lazy: Ray reads the environment when imported\n    import ray\n"}
    assert all(rule(ok) == [] for rule in RULES)


def test_no_job_shadows_the_standard_library():
    """`python jobs/x.py` puts jobs/ first on sys.path: a jobs/inspect.py would be imported by
    dataclasses in place of the standard library's inspect, before any job can fix the path."""
    import sys
    from pathlib import Path
    jobs = Path(__file__).resolve().parents[1] / "jobs"
    assert not {p.stem for p in jobs.glob("*.py")} & set(sys.stdlib_module_names)

"""The demo's console: one line per step from a job's own output, the whole output in its log."""
import io
import sys
from pathlib import Path

from cluster.console import Progress, run_step

LOG = Path(__file__).parent / "recordings" / "train_job.txt"      # a train job's output through ray job submit


def test_a_recorded_job_log_reads_as_its_progress():
    p = Progress()
    seen = []
    for line in LOG.read_text().splitlines():
        p.feed(line)
        seen.append(p.text())
    assert "seed 1/3, epoch 2, best val 0.44" in seen
    assert p.text() == "seed 2/3, epoch 40, best val 0.74"           # the last epoch line of the last seed
    f = Progress()
    for line in ["2026-12-07 INFO featurize: 200 trailers", "INFO featurize 120/200", "INFO featurize 200/200"]:
        f.feed(line)
    assert f.text() == "featurize 200/200"
    s = Progress()
    s.feed('vllf summary: {"run_id": "abcdef0123456789", "run_name": "vllf"}')
    assert s.text() == "vllf run abcdef01"


def test_each_step_is_one_line_and_a_failure_shows_its_log(tmp_path):
    out = io.StringIO()                                              # not a terminal: one line at the end
    replay = [sys.executable, "-c", f"print(open({str(LOG)!r}).read())"]
    assert run_step("[ 4/12] train ctt-c", replay, tmp_path / "04_train.log", out=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("[ 4/12] train ctt-c") and lines[0].endswith(
        "seed 2/3, epoch 40, best val 0.74")
    assert (tmp_path / "04_train.log").read_text().strip() == LOG.read_text().strip()   # everything in the log
    out = io.StringIO()
    boom = [sys.executable, "-c", "print('\\n'.join(f'line {i}' for i in range(40))); raise SystemExit('weights missing')"]
    assert not run_step("[ 3/12] featurize", boom, tmp_path / "03_featurize.log", out=out)
    lines = out.getvalue().splitlines()
    assert "FAILED" in lines[0] and lines[-2] == "   | weights missing"
    assert lines[-1] == f"   full log: {tmp_path / '03_featurize.log'}" and len(lines) == 1 + 15 + 1

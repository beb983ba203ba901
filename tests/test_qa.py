"""Pictures of what featurize saw: jobs/inspect_trailer.py on a video and on a stored trailer."""
import json

import numpy as np
import pytest

from featurize.config import FeaturizeConfig
from featurize.extract import decode
from tests import media
from tests.conftest import TINY


def _png(path) -> bool:
    return open(path, "rb").read(4) == b"\x89PNG"


def test_inspect_a_video_shows_its_keyframes_and_cuts(tmp_path, capsys):
    from jobs import inspect_trailer as inspect
    video = tmp_path / "clip.mp4"
    media.write_clip(video, 6.0)                           # a new colour every 24 frames: cuts at 24 and 48
    assert inspect.main([str(video), "--output", str(tmp_path / "out")]) == 0
    got = json.loads(capsys.readouterr().out)
    d = decode(str(video), FeaturizeConfig())
    assert got["cuts"] == len(d.cuts) == 2 and got["keyframes"] == len(d.keyframes) == 3
    assert [abs(c - k) <= 2 for c, k in zip(d.cuts, (24, 48))] == [True, True]
    assert len(d.similarity) == d.n_frames - 1 and np.all((d.similarity >= 0) & (d.similarity <= 1.0001))
    change = 1 - d.similarity                                 # similarity[i]: frame i + 1 against frame i
    assert change[22:25].max() >= FeaturizeConfig().shots.cut_ratio * change[5:15].max() > 0
    assert all(_png(f) for f in got["files"].values())
    assert got["files"]["keyframes"].endswith("clip_keyframes.png")


def test_inspect_a_damaged_video_fails_in_one_line(tmp_path, capsys):
    from jobs import inspect_trailer as inspect
    (tmp_path / "x.mp4").write_text("not a video")
    with pytest.raises(SystemExit) as e:
        inspect.main([str(tmp_path / "x.mp4"), "--output", str(tmp_path)])
    assert e.value.code == 1 and "InvalidDataError" in capsys.readouterr().err


@pytest.mark.slow
def test_inspect_a_stored_trailer_decodes_it_as_the_store_was_made(store, tmp_path, capsys):
    import pyarrow.compute as pc

    from featurize import store as fstore
    from jobs import inspect_trailer as inspect
    path = str(store[0])
    t = fstore.read_table(path, columns=["trailer_id", "num_keyframes", "n_frames"])
    tid = sorted(t.column("trailer_id").to_pylist())[0]
    row = t.filter(pc.field("trailer_id") == tid).to_pylist()[0]
    assert inspect.main([path, tid, "--output", str(tmp_path / "one"), *TINY]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["keyframes"], got["n_frames"]) == (row["num_keyframes"], row["n_frames"])
    assert inspect.main([path, "--sample", "2", "--output", str(tmp_path / "many")]) == 0
    files = json.loads(capsys.readouterr().out)["files"]
    assert files[0].endswith("store_overview.png") and len(files) == 5 and all(_png(f) for f in files)
    with pytest.raises(SystemExit) as e:
        inspect.main([path, "no-such-trailer", "--output", str(tmp_path)])
    assert e.value.code == 1 and "no trailer 'no-such-trailer'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        inspect.main([path, "--output", str(tmp_path)])
    assert e.value.code == 2

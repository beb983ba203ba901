"""The documentation holds to the code: the config reference is what the dataclasses say,
every link resolves, every page is reachable from a README that fits on a screen."""
import re
from pathlib import Path

from ctt.config_reference import field_comments, render
from featurize.config import ShotConfig

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_the_config_reference_is_generated_from_the_dataclasses():
    assert (ROOT / "docs" / "config.md").read_text() == render(), "run `make docs`"
    comments = field_comments(ShotConfig)       # a comment and the comment-only lines that continue it
    assert comments["flash_frames"] == "a bright excursion this short that returns to the same shot is no cut"
    assert comments["spans"].startswith("gradual transitions: frames compared this") and "covers 1 s" in comments["spans"]
    assert comments["candidates"].startswith("transnetv2: keyframe candidates") and "chosen later" in comments["candidates"]
    assert "hue_bins" not in comments


def test_every_link_resolves_and_every_page_is_reachable():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in LINK.findall(page.read_text()):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name} links to {target}"
    linked = {(ROOT / t).resolve() for t in LINK.findall((ROOT / "README.md").read_text())}
    assert set((ROOT / "docs").glob("*.md")) <= linked


def test_the_readme_fits_on_a_screen():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150

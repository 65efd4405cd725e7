"""The dashboard's files (src/hadirector/data/dashboard/): shipped in the package, loading nothing
from outside it, and putting no API string into the page as markup. The page itself is driven in
a real browser by tests/integration/test_dashboard_browser.py."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import pytest

DASH = resources.files("hadirector") / "data" / "dashboard"
FILES = {p.name: p.read_text(encoding="utf-8") for p in DASH.iterdir() if p.is_file()}


def test_the_page_and_its_files_are_in_the_package():
    assert {"index.html", "dashboard.js", "dashboard.css"} <= set(FILES), sorted(FILES)
    # every file the page names is served from /static/ and exists in the folder
    refs = re.findall(r'(?:src|href)="([^"]+)"', FILES["index.html"])
    local = [r for r in refs if not r.startswith("data:")]
    assert local, refs
    for r in local:
        assert r.startswith("/static/"), f"index.html names {r!r}: everything comes from /static/"
        assert r.removeprefix("/static/") in FILES, f"index.html names {r!r}, not in the folder"


def test_the_package_data_pattern_ships_the_folder():
    # pyproject.toml ships data/*/*: a flat folder (no subfolders) is what that pattern takes
    assert all(p.is_file() for p in DASH.iterdir()), "data/dashboard/ must stay flat"
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"data/*/*"' in pyproject


@pytest.mark.parametrize("name", sorted(FILES))
def test_nothing_is_loaded_from_outside(name):
    text = FILES[name]
    # the SVG namespace is an identifier, not a download
    text = text.replace("http://www.w3.org/2000/svg", "")
    for pattern in (r"https?://", r"(?<![:\w])//[a-z0-9.-]+\.[a-z]{2,}/", r"@import", r"@font-face",
                    r"url\(\s*['\"]?(?!data:)"):
        m = re.search(pattern, text, re.IGNORECASE)
        assert m is None, f"{name}: {m.group(0)!r} at offset {m.start()}: nothing from outside the package"


def test_no_markup_from_strings():
    js = FILES["dashboard.js"]
    # code only: the header comment may name what is avoided
    code = re.sub(r"/\*.*?\*/", "", js, flags=re.S)
    code = re.sub(r"^\s*//.*$", "", code, flags=re.M)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function", "DOMParser", "createContextualFragment"):
        assert sink not in code, f"dashboard.js uses {sink}: text goes through textContent only"

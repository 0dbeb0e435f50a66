"""No tracked file names an absolute path of the machine it was written on (a path under one of :data:`ROOTS`):
code, configs, docs and results travel to other machines."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("work", "root", "home", "tmp", "mnt", "scratch", "Users")
MACHINE_PATH = re.compile(r"(?<![\w.~/-])/(?:" + "|".join(ROOTS) + r")/[\w.-]")


def _abs(*parts: str) -> str:
    """An absolute path from its parts (this file writes none literally)."""
    return "/".join(["", *parts])


def machine_paths(text: str) -> list[str]:
    """The absolute machine paths written in ``text``, one per occurrence (its first characters)."""
    return [m.group(0) for m in MACHINE_PATH.finditer(text)]


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    files = []
    for name in filter(None, names.decode().split("\0")):
        path = REPO / name
        try:
            path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):  # binary (or deleted in the working tree)
            continue
        files.append(path)
    return files


def test_no_tracked_file_names_a_machine_path() -> None:
    found = [f"{p.relative_to(REPO)}: {', '.join(machine_paths(p.read_text(encoding='utf-8')))}"
             for p in tracked_text_files() if machine_paths(p.read_text(encoding="utf-8"))]
    assert not found, "\n".join(found)


def test_the_checker_tells_machine_paths_from_others() -> None:
    text = (f'SHARED = Path("{_abs("work", "shared", "data")}")\n# python3 -m venv {_abs("tmp", "jaxenv")}\n'
            f'home = "{_abs("home", "me", "x")}"\nurl = "https://example.org/work/x"\nrel = "../shared/work/x"\n'
            "``pa_geo/tmp/x`` ~/work/y")
    assert machine_paths(text) == [_abs("work", "s"), _abs("tmp", "j"), _abs("home", "m")]
    assert len(tracked_text_files()) > 100

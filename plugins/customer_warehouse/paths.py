"""Where local state lives: the project folder and its git-ignored state folders."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout (editable install) or, failing that, ``$CW_HOME`` / the working directory."""
    if os.environ.get("CW_HOME"):
        return Path(os.environ["CW_HOME"]).resolve()
    here = Path(__file__).resolve().parents[2]
    if (here / "dbt_project").is_dir():
        return here
    return Path.cwd()


def state_dir(name: str) -> Path:
    """A git-ignored folder under the project (``.warehouse``, ``.demo``, ``.artifacts``…)."""
    path = project_root() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def dbt_project_dir() -> Path:
    return project_root() / "dbt_project"


def expectations_dir() -> Path:
    return project_root() / "expectations"

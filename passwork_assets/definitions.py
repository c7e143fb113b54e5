"""The Dagster code location: everything is built from the component tree under `passwork_assets/defs/`."""

import warnings
from pathlib import Path

import dagster as dg

import passwork_assets.defs

# Passwork builds on Components and pools knowingly; their beta/preview notices would bury real warnings in
# every process that loads the code location (webserver, daemon, each run).
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dg.definitions
def defs() -> dg.Definitions:
    """Load `passwork_assets/defs/` (the Passwork component reads `mappings/` relative to the project root).

    The tree is built directly rather than through `dg.load_from_defs_folder` so that the code location loads
    the same way under `dagster dev`, `dg dev` and a deployment, with or without `[tool.dg]` settings.
    """
    return dg.ComponentTree(defs_module=passwork_assets.defs, project_root=PROJECT_ROOT).build_defs()

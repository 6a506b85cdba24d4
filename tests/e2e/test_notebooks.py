"""The notebooks run top to bottom on a small pipeline, and are stored without outputs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from pipeline_run import REPO, run_cli, small_params, tracking_uri

pytestmark = pytest.mark.xdist_group("pipeline")

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def two_runs(small_pipeline: Path) -> Path:
    """A second train + evaluate with other churn tree sizes (own folders, not registered), so runs can be compared."""
    params = small_params(small_pipeline, train={"churn": {"num_leaves": 7}}, mlflow={"register_models": False})
    params_file = small_pipeline / "params_alt.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    run_cli(small_pipeline, ["train", "data/features", "models_alt"], params_file)
    run_cli(small_pipeline, ["evaluate", "data/features", "models_alt", "metrics_alt", "plots_alt"], params_file)
    return small_pipeline


def _kernel_name() -> str:
    """The ``python3`` kernel, if it runs this interpreter; else a kernelspec installed into this venv."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    exe = spec.argv[0]
    # jupyter_client replaces a bare "python"/"python3" with sys.executable.
    if (
        exe in {"python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"}
        or Path(exe).resolve() == Path(sys.executable).resolve()
    ):
        return "python3"
    from ipykernel.kernelspec import install

    install(prefix=sys.prefix, kernel_name="python3")
    return "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path: Path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert "os.environ.get(" in "".join(code[0]["source"])  # first cell reads its inputs from the environment


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, two_runs: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("OMVALD_PROJECT_DIR", str(two_runs))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri(two_runs))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, kernel_name=_kernel_name(), timeout=600, resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 4, f"{path.name}: expected charts in the outputs, got {len(images)}"

"""Test-wide settings: smoke mode for the notebooks, a sane number of threads.

``pytest`` from the repository root runs the unit tests under ``tests/`` and, through
nbval (``--nbval-lax``), every ``notebooks/*.ipynb``. The variables below are set
before any notebook kernel starts, so the kernels inherit them.
"""
import os

# SSCN_SMOKE=1 shrinks every notebook's steps and sizes so the suite runs in minutes
os.environ["SSCN_SMOKE"] = "1"
# one BLAS/OpenMP pool per process, no larger than the machine: nbval kernels run
# beside pytest, and oversubscribed threads make small tensors slower, not faster
_threads = str(min(4, os.cpu_count() or 1))
os.environ.setdefault("OMP_NUM_THREADS", _threads)
os.environ.setdefault("MKL_NUM_THREADS", _threads)

import torch  # noqa: E402  (after the thread variables, which torch reads on import)
from hypothesis import settings  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

import pytest  # noqa: E402


@pytest.fixture
def one_thread():
    """Run a test on one torch thread: tiny tensors are faster so, and a busy machine slows
    two threads far more than one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=["auto", "bf16"], ids=["auto", "bf16-forced"])
def auto_and_forced_bf16(request, monkeypatch):
    """Run a test twice: in the precision ``auto`` picks here, then with bf16 autocast forced.

    ``auto`` is bf16 on a CPU with AVX-512 BF16 or AMX and float32 elsewhere, so a test
    that compares training numbers could pass on one machine and fail on the next; the
    forced run makes every machine try both. ``SSCN_PRECISION`` is what ``auto`` obeys
    (``sscn/training/precision.py``), and subprocesses inherit it. Without native bf16 the forced run
    is several times slower, so only the tests whose numbers depend on the training
    precision use this fixture, and they are tiny. ``SSCN_PRECISION=float32 pytest`` runs
    the first pass as an AVX2-only machine would.
    """
    if request.param == "bf16":
        monkeypatch.setenv("SSCN_PRECISION", "bf16")
    return request.param


# the notebook sources are Python files; nbval should only see the built notebooks
collect_ignore = ["notebooks/src"]
collect_ignore_glob = ["**/.ipynb_checkpoints/*"]

# shared CPUs make timings noisy: no per-example deadline, modest example counts
settings.register_profile("sscn", deadline=None, max_examples=50)
settings.load_profile("sscn")


def pytest_collection_modifyitems(items):
    """Let nbval compare the stored outputs of cleaned notebooks.

    tools/build_notebooks.py strips execution counts so the committed notebooks diff
    well, but nbval treats a cell with outputs and no count as never run and fails it
    ("Unrun reference cell has outputs"). The stored outputs are from a real smoke run,
    so the count is restored here, in memory only; with --nbval-lax only the cells
    marked ``# NBVAL_CHECK_OUTPUT`` are compared.
    """
    for item in items:
        cell = getattr(item, "cell", None)
        if type(item).__name__ == "IPyNbCell" and cell is not None and cell.get("outputs"):
            if cell.get("execution_count") is None:
                cell["execution_count"] = 1

"""tools/plot_ab.py reads the dense rows of evaluation folders and draws the A/B figure."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_tool():
    spec = importlib.util.spec_from_file_location("plot_ab", ROOT / "tools" / "plot_ab.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results_folder(root: Path, tps: float, same: float, palette: float) -> Path:
    root.mkdir()
    (root / "results.csv").write_text("method,reference,psnr\nsparse,tps,1.0\n" f"dense,tps,{tps}\n")
    (root / "same_class.csv").write_text("method,reference,psnr,palette\nsparse,same_class,2.0,0.1\n"
                                         f"dense,same_class,{same},{palette}\n")
    return root


def test_plot_ab_reads_the_dense_rows_and_writes_the_figure(tmp_path):
    tool = load_tool()
    control = results_folder(tmp_path / "control", 34.2, 21.7, 0.71)
    mix = results_folder(tmp_path / "mix", 33.9, 22.3, 0.72)
    assert tool.scores(mix) == (33.9, 22.3, 0.72)
    out = tmp_path / "ab.png"
    tool.main([f"control={control}", f"mix={mix}", "-o", str(out)])
    assert out.stat().st_size > 1000

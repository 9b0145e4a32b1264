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


def test_an_absolute_bar_names_the_runs_that_meet_it(tmp_path, capsys):
    tool = load_tool()
    control = results_folder(tmp_path / "control", 34.2, 21.9, 0.69)
    near = results_folder(tmp_path / "near", 34.0, 22.2, 0.70)
    best = results_folder(tmp_path / "best", 34.0, 22.2, 0.72)
    floors = (33.91, 22.12, 0.714)
    assert not tool.meets(tool.scores(near), floors) and tool.meets(tool.scores(best), floors)
    out = tmp_path / "ab.png"
    tool.main([f"control={control}", f"near={near}", f"best={best}", "--floors", *map(str, floors), "-o", str(out)])
    printed = capsys.readouterr().out
    assert "near: TPS 34.00, same class 22.20 dB, palette 0.7000: misses" in printed
    assert "best: TPS 34.00, same class 22.20 dB, palette 0.7200: meets" in printed
    assert out.stat().st_size > 1000

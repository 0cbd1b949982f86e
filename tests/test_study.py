"""The study: pooled verdicts against hand computations, one cell on planted data, the flow end to end."""
import json

import numpy as np
import pandas as pd
import pytest

from tests._tiny_bert import WORDS


def _cell(diff, lo, hi, share=0.5, ci=(0.3, 0.7), gap=0.02, reduction="pca", stable=(6, 8, 0.4, 0.9, 0.3)):
    k, n, s_lo, s_hi, permuted = stable
    return {"corpus": "c", "model": "m", "reduction": reduction, "seed": 0, "d": 2,
            "signal": {"full_r2": 0.5, "reduced_r2": 0.3, "kept": 0.6},
            "depths": {3: {"exact": False, "n_features": 3, "test_r2": 0.1, "training_gap": gap,
                           "stability": {"k": k, "n": n, "share": k / n, "lo": s_lo, "hi": s_hi, "permuted": permuted},
                           "symmetry_all": {"diff": diff, "diff_lo": lo, "diff_hi": hi},
                           "emergence": {"share_through_point": share, "share_through_point_ci": list(ci)}}}}


def test_pooled_verdicts_match_a_hand_computation():
    from flows.study import claims
    cells = [_cell(0.2, 0.1, 0.3), _cell(0.4, 0.2, 0.6, gap=-0.05), {"corpus": "c", "model": "m", "reduction": "pls",
                                                                      "seed": 1, "error": "ValueError: x"}]
    deeper, own, nested, through, on_planes, stable, exact, convex = claims(cells)
    half = 1.96 * np.sqrt((0.2 / 3.92) ** 2 + (0.4 / 3.92) ** 2) / 2
    assert deeper["n"] == 2 and deeper["effect"] == pytest.approx(0.3)
    assert deeper["lo"] == pytest.approx(0.3 - half) and deeper["verdict"] == "supported"
    assert own["verdict"] == nested["verdict"] == on_planes["verdict"] == "cannot tell" and own["n"] == 0
    assert "through training points" in through["claim"] and through["effect"] == pytest.approx(0.45)
    assert through["verdict"] == "supported"
    assert convex["verdict"] == "not supported" and convex["lo"] == -0.05 and convex["effect"] == pytest.approx(-0.015)
    assert exact["verdict"] == "cannot tell" and exact["n"] == 0
    assert stable["effect"] == pytest.approx(0.75 - 0.3) and stable["verdict"] == "supported"
    assert stable["lo"] == pytest.approx(0.45 - 1.96 * np.sqrt(2 * (0.5 / 3.92) ** 2) / 2)
    assert claims([_cell(0.1, 0, 0.2, stable=(3, 8, 0.1, 0.7, 0.5))])[5]["verdict"] == "cannot tell"
    flat = claims([_cell(0.1, -0.2, 0.4), _cell(-0.1, -0.4, 0.2)])[0]
    assert flat["verdict"] == "cannot tell"
    assert claims([_cell(-0.3, -0.5, -0.1)])[0]["verdict"] == "not supported"


def test_config_is_checked():
    from flows.study import StudyConfig
    with pytest.raises(ValueError, match="reductions must be among"):
        StudyConfig(reductions=("tsne",))
    with pytest.raises(ValueError, match="at least one"):
        StudyConfig(seeds=())
    with pytest.raises(ValueError, match="depths"):
        StudyConfig(depths=(1, 2))


def test_one_cell_on_the_exact_1d_track():
    """A target linear in one direction: the 1-D PLS projection keeps it; the 1-D Lasso of every depth is the
    proven optimum and no trained network beats it."""
    from flows.study import StudyConfig, run_cell
    rng = np.random.default_rng(0)
    V = rng.normal(size=(40, 4))
    y = V[:, 3] + 0.05 * rng.normal(size=40)
    train = np.arange(40) < 30
    c = StudyConfig(exact_depths=(2, 3), epochs=200, network_seeds=(0,), width=8, n_boot=30, n_null=30)
    out = run_cell(V, y, train, "pls1", 0, c)
    assert out["d"] == 1 and out["signal"]["reduced_r2"] > 0.8
    assert set(out["depths"]) == {2, 3}
    for r in out["depths"].values():
        assert r["exact"] and r["training_gap"] >= -1e-6
        assert 0 <= r["emergence"]["share_through_point"] <= 1
        st = r["stability"]
        assert 0 <= st["k"] <= st["n"] and st["lo"] <= st["share"] == st["k"] / st["n"] <= st["hi"]
    json.dumps(out)


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_harness")
def test_study_flow_maps_cells_and_writes_a_report(tmp_path, tiny_bert):
    from flows.study import StudyConfig, run_study
    rng = np.random.default_rng(0)
    texts = list(dict.fromkeys(" ".join(rng.choice(WORDS, 3, replace=False)) for _ in range(60)))[:40]
    path = tmp_path / "words.csv"
    pd.DataFrame({"text": texts, "target": rng.uniform(-1, 1, len(texts)).round(3)}).to_csv(path, index=False)
    cfg = StudyConfig(corpora=(str(path),), models=(str(tiny_bert), f"{tiny_bert}@1"), reductions=("pca", "pls1"),
                      depths=(2,), exact_depths=(2, 3), seeds=(0,), max_points=30, epochs=50, width=4,
                      network_seeds=(0,), n_boot=20, n_null=20, workspace=str(tmp_path / "ws"))
    result = run_study(cfg)
    assert len(result["cells"]) == 4 and not [c for c in result["cells"] if "error" in c]
    assert {c["model"] for c in result["cells"]} == {str(tiny_bert), f"{tiny_bert}@1"}
    page = (tmp_path / "ws" / "reports" / "study.html").read_text()
    assert all(c["verdict"] in page for c in result["claims"]) and "pls1" in page

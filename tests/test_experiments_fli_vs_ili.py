"""``cosmolaw run fli-vs-ili --quick``: posteriors of (Omega_m, sigma8) from field-level and
implicit-likelihood inference on one mock, against the autodiff Fisher limit. Areas and
coverage are recomputed here from the draws stored in ``fli_vs_ili.h5``, and the run's report
is opened in headless chromium (``report_browser``) like the other reports."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from report_browser import CHROMIUM, inspect_in_chromium, problems

from cosmolaw.cli import main
from experiments.fli_vs_ili import COVERAGE_D2, QUICK

IMPLICIT = ("ili_pk_kmax", "ili_pk_nyquist", "ili_imnn")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("fli-vs-ili")
    assert main(["run", "fli-vs-ili", "--quick", "--out", str(out)]) == 0
    return out


def _posteriors(run_dir) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    with h5py.File(run_dir / "fli_vs_ili.h5") as h5:
        draws = {k: h5[f"posterior/{k}/draws"][:] for k in h5["posterior"]}
        return draws, h5["truth"][:], h5["fisher/matrix"][:]


def _area(draws: np.ndarray) -> float:
    return float(np.sqrt(np.linalg.det(np.cov(draws, rowvar=False))))


def _distance2(draws: np.ndarray, truth: np.ndarray) -> float:
    diff = draws.mean(0) - truth
    return float(diff @ np.linalg.solve(np.cov(draws, rowvar=False), diff))


@pytest.mark.slow
def test_implicit_posteriors_cover_the_truth_at_2_sigma(run_dir):
    draws, truth, _ = _posteriors(run_dir)
    for key in IMPLICIT:
        assert _distance2(draws[key], truth) < COVERAGE_D2, key


@pytest.mark.slow
def test_implicit_posteriors_learn_from_the_data(run_dir):
    """Each implicit posterior, the IMNN's included, is at most half the area of the box prior
    (area sqrt(det C) = product of widths / 12 for a uniform box): at least ln 2 nats gained."""
    draws, _, _ = _posteriors(run_dir)
    widths = [np.ptp(QUICK["prior"][name]) for name in ("Omega_m", "sigma8")]
    prior_area = widths[0] * widths[1] / 12.0
    for key in IMPLICIT:
        assert _area(draws[key]) < 0.5 * prior_area, key


@pytest.mark.slow
def test_field_level_posterior_covers_the_truth_at_2_sigma(run_dir):
    """The chains move the field partially centred on the cosmology, so that 2 x 300 MCLMC
    steps mix in (Omega_m, sigma8) (split-Rhat 1.09 and 1.08 when written, about 2 with the
    non-centred field): their spread is the posterior's."""
    draws, truth, _ = _posteriors(run_dir)
    assert _distance2(draws["fli"], truth) < COVERAGE_D2


@pytest.mark.slow
def test_areas_are_positive_and_above_the_fisher_limit(run_dir):
    draws, _, fisher = _posteriors(run_dir)
    fisher_area = 1.0 / np.sqrt(np.linalg.det(fisher))
    assert np.isfinite(fisher_area) and fisher_area > 0
    summary = json.loads((run_dir / "discoveries.json").read_text())["summary"]
    for key, d in draws.items():
        area = _area(d)
        assert np.isfinite(area) and area > 0, key
        assert fisher_area <= QUICK["fisher_tolerance"] * area, key
        assert summary["areas"][key] == pytest.approx(area, rel=1e-6)
    # The field level is tighter than P(k < k_max), or the report says why with the numbers.
    if _area(draws["fli"]) >= _area(draws["ili_pk_kmax"]):
        assert "is NOT below" in (run_dir / "report.html").read_text()


@pytest.mark.slow
def test_report_and_data_are_written(run_dir):
    html = (run_dir / "report.html").read_text()
    assert 'id="results"' in html and "data:image/png;base64," in html
    with h5py.File(run_dir / "fli_vs_ili.h5") as h5:
        for name in ("table/area", "table/gain", "table/seconds", "fisher/matrix"):
            assert h5[name].attrs["units"] and h5[name].attrs["description"], name
    costs = json.loads((run_dir / "discoveries.json").read_text())["summary"]["costs"]
    assert costs["fli"]["gradients"] > 0 and costs["ili_pk_kmax"]["simulations"] > 0


@pytest.mark.slow
@pytest.mark.browser
def test_report_renders_in_chromium(run_dir):
    """The real report: no law, one result panel in the results section with the decoded
    GetDist contour figure and a table row per posterior and for the Fisher limit, whose
    areas are those of the stored draws."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    report = run_dir / "report.html"
    screenshot = report.with_suffix(".png")
    page = inspect_in_chromium(report, screenshot)
    assert problems(page, n_laws=0, n_panels=1) == []
    (panel,) = page["panels"]
    (contours,) = panel["images"]
    assert contours["alt"].startswith("GetDist contours")
    assert contours["width"] > 200 and contours["height"] > 200
    assert panel["header"][:4] == ["posterior", "Omega_m", "sigma8", "area"]
    draws, _, fisher = _posteriors(run_dir)
    rows = {row[0]: row for row in panel["rows"]}
    assert len(rows) == len(draws) + 1
    shown = [row[3] for row in panel["rows"]]
    areas = [*(_area(draws[k]) for k in ("fli", *IMPLICIT)), 1 / np.sqrt(np.linalg.det(fisher))]
    assert shown == [f"{a:.3g}" for a in areas]
    assert screenshot.stat().st_size > 10_000

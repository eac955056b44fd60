"""The plot renders a PNG; the analysis and the CLI module never pull matplotlib (or numpy) in by themselves."""

from __future__ import annotations

import subprocess
import sys

from healthhut.records.sleep.analysis import analyse_night
from healthhut.records.sleep.plot import render_night_png
from healthhut.records.sleep.synthetic import osa_night, synthetic_night


def test_plot_is_a_png_with_all_panels() -> None:
    spec, _, _ = osa_night(2.0, flow_hz=10.0)
    png = render_night_png(analyse_night(synthetic_night(spec)))
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width == 1400 and height == 800          # 14 in x (3 panels x 2.4 in + 0.8 in) at 100 dpi


def test_oximetry_only_plot_has_two_panels() -> None:
    spec, _, _ = osa_night(2.0, flow_hz=None)
    png = render_night_png(analyse_night(synthetic_night(spec)))
    assert int.from_bytes(png[20:24], "big") == 560


def test_analysis_does_not_import_matplotlib_and_cli_module_is_light() -> None:
    code = ("import sys\n"
            "import healthhut.cli.sleep\n"
            "assert 'numpy' not in sys.modules and 'pyedflib' not in sys.modules\n"
            "from healthhut.records.sleep.synthetic import osa_night, synthetic_night\n"
            "from healthhut.records.sleep.analysis import analyse_night\n"
            "spec, _, _ = osa_night(1.0, flow_hz=10.0)\n"
            "analyse_night(synthetic_night(spec))\n"
            "assert 'matplotlib' not in sys.modules and 'pyedflib' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)

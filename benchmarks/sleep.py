"""Benchmark: a 10-hour night (1 Hz SpO2 and pulse, 25 Hz airflow) analysed end to end.

Run: .venv/bin/python benchmarks/sleep.py [--hours 10] [--repeat 3]
Prints the seconds per analysis (best and median of the repeats) and the peak memory: traced numpy/Python
allocations during one analysis (tracemalloc) and the process's peak resident set size while it analyses
(Linux: the high-water mark is reset through /proc/self/clear_refs just before, so building the synthetic
night does not count, while the night itself, resident as the input, does), and separately while it builds
the FHIR records and the plot.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from healthhut.readings import DeviceIdentity, Transport
from healthhut.records.sleep.analysis import analyse_night
from healthhut.records.sleep.series import night_from_reading, reading_from_night
from healthhut.records.sleep.synthetic import osa_night, synthetic_night


def peak_rss_mb(action: Callable[[], object]) -> float:
    """Peak RSS of this process while `action` runs (VmHWM after resetting it), in MB."""
    clear = Path("/proc/self/clear_refs")
    try:
        clear.write_text("5")
    except OSError:  # not Linux, or not allowed: fall back to the lifetime maximum
        action()
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    action()
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    spec, apneas, hypopneas = osa_night(args.hours, flow_hz=25.0)
    night = synthetic_night(spec)
    device = DeviceIdentity(transport=Transport.FILE, model="synthetic", serial="bench")
    reading = reading_from_night(night, device, datetime.now(UTC))
    samples = sum(len(s.samples) for s in reading.series.values())

    def end_to_end() -> float:
        started = time.perf_counter()
        analysis = analyse_night(night_from_reading(reading))
        elapsed = time.perf_counter() - started
        assert analysis.metrics.apnea_count == apneas and analysis.metrics.hypopnea_count == hypopneas
        return elapsed

    def arrays_only() -> float:
        started = time.perf_counter()
        analyse_night(night)
        return time.perf_counter() - started

    def with_fhir() -> float:
        from healthhut.records.drafts import PatientRef
        from healthhut.records.normalise import NormaliseSettings, observations_for

        started = time.perf_counter()
        drafts = observations_for(reading, PatientRef("urn:oid:2.999.1", "bench"), NormaliseSettings(site_id="bench"))
        elapsed = time.perf_counter() - started
        assert len(drafts) > 10
        return elapsed

    analysis_rss = peak_rss_mb(end_to_end)
    fhir_rss = peak_rss_mb(with_fhir)
    e2e = [end_to_end() for _ in range(args.repeat)]
    fhir = [with_fhir() for _ in range(args.repeat)]
    core = [arrays_only() for _ in range(args.repeat)]
    tracemalloc.start()
    end_to_end()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(f"night: {args.hours:g} h, {samples} samples (SpO2 + pulse at 1 Hz, airflow at 25 Hz), "
          f"{apneas} apneas + {hypopneas} hypopneas planted")
    print(f"end to end (Reading -> arrays -> analysis): best {min(e2e):.3f} s, median {statistics.median(e2e):.3f} s")
    print(f"analysis from arrays: best {min(core):.3f} s, median {statistics.median(core):.3f} s")
    print(f"including FHIR (analysis + night Observation with SampledData + summaries + DiagnosticReport, with "
          f"the PNG plot when matplotlib is installed; R4B-validated): "
          f"best {min(fhir):.3f} s")
    print(f"peak traced memory during one end-to-end analysis: {peak / 1e6:.1f} MB")
    print(f"process peak RSS while analysing end to end (the input night resident): {analysis_rss:.1f} MB")
    print(f"process peak RSS while building the FHIR records and the plot: {fhir_rss:.1f} MB")
    print("target: < 1 s and < 200 MB")


if __name__ == "__main__":
    main()

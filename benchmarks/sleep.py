"""Benchmark: a 10-hour night (1 Hz SpO2 and pulse, 25 Hz airflow) analysed end to end.

Run: .venv/bin/python benchmarks/sleep.py [--hours 10] [--repeat 3]
Prints the seconds per analysis (best and median of the repeats) and the peak memory: traced numpy/Python
allocations during one analysis (tracemalloc) and the process's maximum resident set size.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import tracemalloc
from datetime import UTC, datetime

from healthhut.readings import DeviceIdentity, Transport
from healthhut.records.sleep.analysis import analyse_night
from healthhut.records.sleep.series import night_from_reading, reading_from_night
from healthhut.records.sleep.synthetic import osa_night, synthetic_night


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

    e2e = [end_to_end() for _ in range(args.repeat)]
    fhir = [with_fhir() for _ in range(args.repeat)]
    core = [arrays_only() for _ in range(args.repeat)]
    tracemalloc.start()
    end_to_end()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    print(f"night: {args.hours:g} h, {samples} samples (SpO2 + pulse at 1 Hz, airflow at 25 Hz), "
          f"{apneas} apneas + {hypopneas} hypopneas planted")
    print(f"end to end (Reading -> arrays -> analysis): best {min(e2e):.3f} s, median {statistics.median(e2e):.3f} s")
    print(f"analysis from arrays: best {min(core):.3f} s, median {statistics.median(core):.3f} s")
    print(f"including FHIR (analysis + night Observation with SampledData + summaries + DiagnosticReport, with "
          f"the PNG plot when matplotlib is installed; R4B-validated): "
          f"best {min(fhir):.3f} s")
    print(f"peak traced memory during one end-to-end analysis: {peak / 1e6:.1f} MB")
    print(f"process max RSS (incl. the synthetic night and its Reading): {maxrss_mb:.1f} MB")
    print("target: < 1 s and < 200 MB")


if __name__ == "__main__":
    main()

"""Codec names → the module and class that implement them, imported only when asked for."""

from __future__ import annotations

import importlib

from healthhut.drivers.codecs.base import Codec
from healthhut.errors import UsageError

# name: "module:Class". Modules are imported lazily so `healthhut --help` stays fast.
CODECS: dict[str, str] = {
    # Bluetooth SIG measurement characteristics (foundation)
    "bls.measurement": "healthhut.drivers.codecs.blood_pressure:BloodPressureMeasurementCodec",
    "bls.intermediate-cuff": "healthhut.drivers.codecs.blood_pressure:IntermediateCuffPressureCodec",
    "plx.spot-check": "healthhut.drivers.codecs.pulse_oximetry:SpotCheckCodec",
    "plx.continuous": "healthhut.drivers.codecs.pulse_oximetry:ContinuousCodec",
    "hts.temperature": "healthhut.drivers.codecs.thermometer:TemperatureMeasurementCodec",
    "wss.weight": "healthhut.drivers.codecs.weight_scale:WeightMeasurementCodec",
    # serial devices (issue 4)
    "cms50.v7": "healthhut.drivers.codecs.cms50_v7:Cms50V7Codec",
    "cms50.legacy": "healthhut.drivers.codecs.cms50_legacy:Cms50LegacyCodec",
    "pc300": "healthhut.drivers.codecs.pc300:Pc300Codec",
    "berrymed.bci": "healthhut.drivers.codecs.berrymed:BerrymedBciCodec",
    "racp": "healthhut.drivers.codecs.racp:RacpCodec",
    "cts.current-time": "healthhut.drivers.codecs.current_time:CurrentTimeCodec",
    # BLE drivers (issue 3)
    "bls.record": "healthhut.drivers.codecs.bp_record:BloodPressureRecordCodec",
    "viatom.frame": "healthhut.drivers.codecs.viatom:ViatomFrameCodec",
    # sleep (issue 5): a whole stored overnight file is one frame
    "viatom.file": "healthhut.drivers.codecs.viatom_file:ViatomFileCodec",
}


def codec_names() -> list[str]:
    return sorted(CODECS)


def get_codec(name: str) -> Codec:
    """The codec registered under `name`; an unknown name is a usage error listing the known ones."""
    target = CODECS.get(name)
    if target is None:
        raise UsageError(f"unknown codec {name!r}; known codecs: {', '.join(codec_names())}")
    module_name, _, class_name = target.partition(":")
    module = importlib.import_module(module_name)
    codec: Codec = getattr(module, class_name)()
    return codec

"""Framers fuzzed: any chunking gives the same frames, garbage never breaks them, a frame after garbage is found."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from healthhut.drivers.codecs import berrymed, cms50_legacy, cms50_v7, pc300
from healthhut.drivers.codecs.base import ReadingContext
from healthhut.drivers.codecs.framing import (
    AA55Framer,
    Cms50LegacyFramer,
    HighByteFramer,
    IncrementalFramer,
    SyncBitFramer,
    aa55_frame,
)
from healthhut.drivers.codecs.registry import get_codec
from healthhut.errors import DecodeError, ReadingError
from healthhut.readings import DeviceIdentity, Transport

FRAMERS: dict[str, Callable[[], IncrementalFramer]] = {
    "cms50.v7": lambda: HighByteFramer(cms50_v7.PACKET_LENGTHS),
    "cms50.legacy": Cms50LegacyFramer,
    "berrymed.bci": lambda: SyncBitFramer(5),
    "pc300": AA55Framer,
}

v7_frames = st.sampled_from(sorted(cms50_v7.PACKET_LENGTHS.items())).flatmap(
    lambda kind_len: st.binary(min_size=kind_len[1] - 2, max_size=kind_len[1] - 2).map(
        lambda data, k=kind_len[0]: cms50_v7.pack(k, data)))
sync5_frames = st.tuples(st.integers(0x80, 0xFF), st.binary(min_size=4, max_size=4)).map(
    lambda t: bytes((t[0],)) + bytes(b & 0x7F for b in t[1]))
legacy_frames = st.one_of(
    sync5_frames,
    st.tuples(st.integers(0, 255), st.integers(0, 127)).map(lambda t: cms50_legacy.encode_record(*t)))
aa55_frames = st.tuples(st.integers(0, 255), st.integers(0, 255), st.binary(max_size=24)).map(
    lambda t: aa55_frame(*t))
VALID = {"cms50.v7": v7_frames, "cms50.legacy": legacy_frames, "berrymed.bci": sync5_frames, "pc300": aa55_frames}
names = st.sampled_from(sorted(FRAMERS))


def _frames(framer: IncrementalFramer, chunks: list[bytes]) -> list[tuple[bytes, int, int]]:
    out = []
    for chunk in chunks:
        out.extend((f.data, f.offset, f.discarded_before) for f in framer.feed(chunk))
    return out


def _chunk(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(stream) + 1) for c in cuts})
    return [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]


@st.composite
def mixed_stream(draw: st.DrawFn, name: str) -> bytes:
    parts = draw(st.lists(st.one_of(VALID[name], st.binary(max_size=12)), max_size=25))
    return b"".join(parts)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), name=names)
def test_any_chunking_gives_the_same_frames(data: st.DataObject, name: str) -> None:
    stream = data.draw(mixed_stream(name))
    cuts = data.draw(st.lists(st.integers(0, 10_000), max_size=40))
    whole = FRAMERS[name]()
    expected = _frames(whole, [stream])
    chunked = FRAMERS[name]()
    assert _frames(chunked, _chunk(stream, cuts)) == expected
    assert chunked.discarded == whole.discarded
    assert chunked.pending == whole.pending


@settings(max_examples=300, deadline=None)
@given(data=st.data(), name=names)
def test_byte_by_byte_equals_whole(data: st.DataObject, name: str) -> None:
    stream = data.draw(mixed_stream(name))
    one = _frames(FRAMERS[name](), [stream[i:i + 1] for i in range(len(stream))])
    assert one == _frames(FRAMERS[name](), [stream])


@settings(max_examples=300, deadline=None)
@given(stream=st.binary(max_size=600), name=names)
def test_random_bytes_raise_only_documented_errors(stream: bytes, name: str) -> None:
    codec = get_codec(name)
    context = ReadingContext(DeviceIdentity(Transport.SERIAL, address="/dev/ttyUSB0"), datetime.now(UTC), UTC)
    framer = FRAMERS[name]()
    frames = framer.feed(stream)
    consumed = sum(len(f.data) for f in frames)
    assert consumed + framer.discarded + framer.pending == len(stream)   # every byte accounted for
    for frame in frames:
        try:
            decoded = codec.decode(frame.data)
            codec.readings(decoded, context)
        except (DecodeError, ReadingError):
            pass


@settings(max_examples=400, deadline=None)
@given(data=st.data(), name=names)
def test_a_valid_frame_after_garbage_is_always_found(data: st.DataObject, name: str) -> None:
    garbage = data.draw(st.binary(max_size=64))
    if name == "pc300":
        assume(b"\xaa\x55" not in garbage)   # a sync marker in the garbage could open a CRC-valid frame
    if name == "cms50.legacy":
        assume(not set(garbage) & {0xF0, 0xF1, 0xF2})   # upload-trio heads: see Cms50LegacyFramer
    frame = data.draw(VALID[name])
    found = FRAMERS[name]().feed(garbage + frame)
    assert found, "no frame found"
    assert found[-1].data == frame
    assert found[-1].offset == len(garbage)
    assert sum(f.discarded_before for f in found) + sum(len(f.data) for f in found[:-1]) == len(garbage)


def test_discarded_bytes_are_counted_before_the_frame() -> None:
    framer = AA55Framer()
    frames = framer.feed(bytes.fromhex("00 11 AA 22 AA 55 40 02 01 29 AA 55"))
    assert [(f.data.hex(), f.offset, f.discarded_before) for f in frames] == [("aa5540020129", 4, 4)]
    assert framer.discarded == 4 and framer.pending == 2
    assert framer.finish() == 2 and framer.discarded == 6


def test_a_bad_crc_frame_is_skipped_and_the_next_one_found() -> None:
    bad = bytearray(pc300.START_MEASUREMENT)
    bad[-1] ^= 0xFF
    frames = AA55Framer().feed(bytes(bad) + pc300.STOP_MEASUREMENT)
    assert [f.data for f in frames] == [pc300.STOP_MEASUREMENT]
    assert frames[0].discarded_before == len(bad)


def test_v7_resyncs_on_a_type_byte_inside_a_cut_packet() -> None:
    # a live packet cut after 4 bytes, then a whole one: the type byte of the second restarts framing
    whole = bytes.fromhex("01 80 C6 C6 87 CB E2 FD 80")
    frames = HighByteFramer(cms50_v7.PACKET_LENGTHS).feed(whole[:4] + whole)
    assert [(f.data, f.offset, f.discarded_before) for f in frames] == [(whole, 4, 4)]


def test_legacy_framer_splits_live_packets_and_upload_trios() -> None:
    stream = bytes.fromhex("C4 3C 05 48 61  F2 80 00 F2 80 00 F2 80 00  85 A2 7F  F0 C8 61  F1 8C 5B")
    frames = Cms50LegacyFramer().feed(stream)
    assert [f.data.hex() for f in frames] == ["c43c054861", "f28000", "f28000", "f28000", "85a27f", "f0c861",
                                              "f18c5b"]


def test_bci_packet_cut_short_by_a_new_head() -> None:
    frames = SyncBitFramer(5).feed(bytes.fromhex("C7 58 09  85 28 44 48 5E"))
    assert [(f.data.hex(), f.discarded_before) for f in frames] == [("852844485e", 3)]
    assert berrymed.decode_packet(frames[0].data).pulse_rate == 200

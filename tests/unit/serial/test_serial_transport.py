"""The serial transport: pyserial URLs, async reads off the loop, unplug as DeviceError, backoff reopen."""

from __future__ import annotations

import asyncio
import os

import pytest

from healthhut.drivers.transport_serial import (
    LIKELY_DEVICES,
    Backoff,
    ByteChannel,
    SerialPort,
    SerialSettings,
    list_serial_ports,
    open_serial,
    open_with_backoff,
)
from healthhut.errors import DeviceError


async def test_loop_url_round_trip() -> None:
    port = await SerialPort.open(SerialSettings("loop://", baudrate=19200, parity="O"))
    try:
        await port.write(bytes.fromhex("7D 81 A1 80 80 80 80 80 80"))
        received = b""
        while len(received) < 9:
            received += await asyncio.wait_for(port.read(), 2)
        assert received == bytes.fromhex("7D 81 A1 80 80 80 80 80 80")
    finally:
        await port.close()


async def test_pty_unplug_is_a_device_error() -> None:
    master, slave = os.openpty()
    port = await SerialPort.open(SerialSettings(os.ttyname(slave)))
    try:
        os.write(master, b"\x01\x80")
        received = b""
        while len(received) < 2:
            received += await asyncio.wait_for(port.read(), 2)
        assert received == b"\x01\x80"
        os.close(master)
        os.close(slave)
        with pytest.raises(DeviceError) as caught:
            await asyncio.wait_for(port.read(), 2)
        assert caught.value.transient
        with pytest.raises(DeviceError):   # stays failed
            await port.read()
    finally:
        await port.close()


async def test_missing_port_is_a_transient_device_error() -> None:
    with pytest.raises(DeviceError) as caught:
        await SerialPort.open(SerialSettings("/dev/does-not-exist-healthhut"))
    assert caught.value.transient and caught.value.advice


async def test_bad_url_is_not_transient() -> None:
    with pytest.raises(DeviceError) as caught:
        await open_with_backoff(SerialSettings("nosuchscheme://x"), sleep=_no_sleep)
    assert not caught.value.transient


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


async def test_backoff_reopens_with_growing_delays_and_no_real_waiting() -> None:
    delays: list[float] = []
    attempts = 0

    async def sleep(delay: float) -> None:
        delays.append(delay)

    async def flaky_opener(settings: SerialSettings) -> ByteChannel:
        nonlocal attempts
        attempts += 1
        if attempts < 5:
            raise DeviceError("cannot open")
        return await open_serial(SerialSettings("loop://"))

    port = await open_with_backoff(SerialSettings("/dev/ttyUSB9"), backoff=Backoff(0.5, 2.0, 3.0),
                                   sleep=sleep, opener=flaky_opener)
    await port.close()
    assert delays == [0.5, 1.0, 2.0, 3.0]


async def test_backoff_gives_up_after_its_attempts() -> None:
    async def sleep(delay: float) -> None:
        return None

    with pytest.raises(DeviceError):
        await open_with_backoff(SerialSettings("/dev/does-not-exist-healthhut"), backoff=Backoff(attempts=3),
                                sleep=sleep)


def test_enumeration_and_likely_table() -> None:
    ports = list_serial_ports()
    assert all(p.device for p in ports)
    contec = LIKELY_DEVICES[(0x10C4, 0xEA60)]
    assert contec.bridge == "CP210x" and "CMS50" in contec.guess and contec.driver == "cms50"

"""Units of the BLE transport: error classification with staff advice, and the bounded notification stream."""

from __future__ import annotations

import asyncio

import pytest
from bleak.exc import BleakDeviceNotFoundError, BleakError

from healthhut.drivers.ble.transport_ble import (
    ADVICE_BONDED,
    ADVICE_BUSY,
    ADVICE_DISCONNECTED,
    ADVICE_OUT_OF_RANGE,
    ADVICE_REFUSED,
    BleBackend,
    NotificationStream,
    classify,
    short_uuid,
)
from healthhut.errors import DeviceError


@pytest.mark.parametrize(("error", "advice", "transient"), [
    (TimeoutError(), ADVICE_OUT_OF_RANGE, True),
    (BleakDeviceNotFoundError("AA", "Device with address AA was not found"), ADVICE_OUT_OF_RANGE, True),
    (BleakError("[org.bluez.Error.NotPermitted] Write not permitted"), ADVICE_BONDED, False),
    (BleakError("ATT error INSUFFICIENT AUTHENTICATION"), ADVICE_BONDED, False),
    (BleakError("[org.bluez.Error.InProgress] Operation already in progress"), ADVICE_BUSY, True),
    (BleakError("Not connected"), ADVICE_DISCONNECTED, True),
    (BleakError("something odd"), ADVICE_REFUSED, True),
])
def test_bleak_errors_become_device_errors_with_advice(error: Exception, advice: str, transient: bool) -> None:
    mapped = classify(error, "connect")
    assert isinstance(mapped, DeviceError) and mapped.advice == advice and mapped.transient is transient
    assert mapped.message.startswith("connect")


def test_uuids_and_backend_arguments() -> None:
    assert short_uuid("2A35") == "00002a35-0000-1000-8000-00805f9b34fb"
    assert short_uuid("49535343-FE7D-4AE5-8FA9-9FAFD205E455") == "49535343-fe7d-4ae5-8fa9-9fafd205e455"
    assert BleBackend().client_kwargs() == {}
    assert BleBackend(client=int, options={"x": 1}).client_kwargs() == {"backend": int, "x": 1}


async def test_stream_keeps_order_and_tags() -> None:
    stream = NotificationStream(("2a35", "2a52"), maxsize=4)
    stream.feed("2a35", b"\x01")
    stream.feed("2a52", b"\x02")
    assert await stream.next_tagged(1) == ("2a35", b"\x01")
    assert await stream.next(1) == b"\x02"


async def test_overflow_ends_the_stream_with_an_error_instead_of_dropping() -> None:
    stream = NotificationStream(("2a35",), maxsize=2)
    for i in range(5):
        stream.feed("2a35", bytes([i]))
    with pytest.raises(DeviceError):
        while True:
            await stream.next(1)


async def test_failure_and_silence() -> None:
    stream = NotificationStream(("2a35",), maxsize=2)
    with pytest.raises(DeviceError) as silent:
        await stream.next(0.01)
    assert silent.value.advice == ADVICE_OUT_OF_RANGE
    stream.fail(DeviceError("device disconnected"))
    for _ in range(2):  # every later reader sees the failure too
        with pytest.raises(DeviceError):
            await asyncio.wait_for(stream.next(), 1)

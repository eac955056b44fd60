"""Record Access Control Point (0x2A52): requests the gateway writes and responses the device indicates.

Message = op code (uint8) + operator (uint8) + operand. Sequence-number filters (filter type 0x01, and
Omron's 0x04) carry uint16 values and are decoded; other filter types keep their operand bytes as sent.
The number-of-records response is read as uint16 (PLXS, Glucose, Omron); longer counts land in `surplus`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TypeAlias

from healthhut.drivers.codecs.base import ReadingContext, SingleFrameCodec
from healthhut.drivers.codecs.ieee11073 import ByteReader, uint_bytes
from healthhut.readings import Reading


class RacpOpCode(IntEnum):
    REPORT_STORED_RECORDS = 0x01
    DELETE_STORED_RECORDS = 0x02
    ABORT_OPERATION = 0x03
    REPORT_NUMBER_OF_RECORDS = 0x04
    NUMBER_OF_RECORDS_RESPONSE = 0x05
    RESPONSE_CODE = 0x06
    OMRON_REPORT_LATEST_SEQUENCE = 0x10    # vendor extension (Omron Option Service)
    OMRON_LATEST_SEQUENCE_RESPONSE = 0x11


class RacpOperator(IntEnum):
    NULL = 0x00
    ALL_RECORDS = 0x01
    LESS_OR_EQUAL = 0x02
    GREATER_OR_EQUAL = 0x03
    WITHIN_RANGE = 0x04
    FIRST_RECORD = 0x05
    LAST_RECORD = 0x06


class RacpFilterType(IntEnum):
    SEQUENCE_NUMBER = 0x01
    USER_FACING_TIME = 0x02
    OMRON_SEQUENCE_NUMBER = 0x04


class RacpResponseValue(IntEnum):
    SUCCESS = 0x01
    OP_CODE_NOT_SUPPORTED = 0x02
    INVALID_OPERATOR = 0x03
    OPERATOR_NOT_SUPPORTED = 0x04
    INVALID_OPERAND = 0x05
    NO_RECORDS_FOUND = 0x06
    ABORT_UNSUCCESSFUL = 0x07
    PROCEDURE_NOT_COMPLETED = 0x08
    OPERAND_NOT_SUPPORTED = 0x09


_SEQUENCE_FILTERS = (RacpFilterType.SEQUENCE_NUMBER, RacpFilterType.OMRON_SEQUENCE_NUMBER)
_FILTER_OPERATORS = {RacpOperator.LESS_OR_EQUAL: 1, RacpOperator.GREATER_OR_EQUAL: 1,
                     RacpOperator.WITHIN_RANGE: 2}   # operator -> number of filter values
_RECORD_OPS = (RacpOpCode.REPORT_STORED_RECORDS, RacpOpCode.DELETE_STORED_RECORDS,
               RacpOpCode.REPORT_NUMBER_OF_RECORDS)


@dataclass(frozen=True, slots=True)
class RacpRequest:
    """A client request. With a ≤/≥/range operator, `filter_type` is set and either `sequence_numbers`
    (sequence-number filter types) or `operand` (any other filter type, bytes after the filter type)."""

    op_code: RacpOpCode
    operator: RacpOperator
    filter_type: int | None = None
    sequence_numbers: tuple[int, ...] = ()
    operand: bytes = b""
    surplus: bytes = b""


@dataclass(frozen=True, slots=True)
class RacpNumberOfRecords:
    """Server response 0x05: how many records match."""

    count: int
    surplus: bytes = b""


@dataclass(frozen=True, slots=True)
class RacpResponseCode:
    """Server response 0x06: the outcome of `request_op_code`. `response_value` is the raw code."""

    request_op_code: int
    response_value: int
    surplus: bytes = b""

    @property
    def response(self) -> RacpResponseValue | None:
        """The named response value, or None for a reserved code."""
        try:
            return RacpResponseValue(self.response_value)
        except ValueError:
            return None

    @property
    def succeeded(self) -> bool:
        return self.response_value == RacpResponseValue.SUCCESS


@dataclass(frozen=True, slots=True)
class RacpLatestSequence:
    """Omron response 0x11: the sequence number of the newest stored record."""

    sequence_number: int
    surplus: bytes = b""


RacpMessage: TypeAlias = RacpRequest | RacpNumberOfRecords | RacpResponseCode | RacpLatestSequence


def report_all_records() -> RacpRequest:
    return RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.ALL_RECORDS)


def report_number_of_all_records() -> RacpRequest:
    return RacpRequest(RacpOpCode.REPORT_NUMBER_OF_RECORDS, RacpOperator.ALL_RECORDS)


def report_records_from(sequence_number: int,
                        filter_type: RacpFilterType = RacpFilterType.SEQUENCE_NUMBER) -> RacpRequest:
    """Records with sequence number ≥ `sequence_number` (Omron devices want OMRON_SEQUENCE_NUMBER)."""
    return RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.GREATER_OR_EQUAL, filter_type,
                       (sequence_number,))


def abort_operation() -> RacpRequest:
    return RacpRequest(RacpOpCode.ABORT_OPERATION, RacpOperator.NULL)


def _operator(reader: ByteReader) -> RacpOperator:
    at = reader.offset
    code = reader.u8("operator")
    try:
        return RacpOperator(code)
    except ValueError:
        raise reader.fail(f"unknown operator 0x{code:02X}", at) from None


def _decode_request(op: RacpOpCode, reader: ByteReader) -> RacpRequest:
    operator = _operator(reader)
    count = _FILTER_OPERATORS.get(operator) if op in _RECORD_OPS else None
    if count is None:
        return RacpRequest(op, operator, surplus=reader.surplus())
    filter_type = reader.u8("filter type")
    if filter_type in _SEQUENCE_FILTERS:
        numbers = tuple(reader.u16("sequence number") for _ in range(count))
        return RacpRequest(op, operator, filter_type, numbers, surplus=reader.surplus())
    return RacpRequest(op, operator, filter_type, operand=reader.surplus())


def decode_racp(data: bytes) -> RacpMessage:
    """Decode any RACP message; an unknown op code or operator raises DecodeError."""
    reader = ByteReader(data, "racp")
    code = reader.u8("op code")
    try:
        op = RacpOpCode(code)
    except ValueError:
        raise reader.fail(f"unknown op code 0x{code:02X}", 0) from None
    if op is RacpOpCode.NUMBER_OF_RECORDS_RESPONSE:
        reader.u8("operator")
        return RacpNumberOfRecords(reader.u16("number of records"), reader.surplus())
    if op is RacpOpCode.RESPONSE_CODE:
        reader.u8("operator")
        request = reader.u8("request op code")
        return RacpResponseCode(request, reader.u8("response code value"), reader.surplus())
    if op is RacpOpCode.OMRON_LATEST_SEQUENCE_RESPONSE:
        reader.u8("operator")
        return RacpLatestSequence(reader.u16("sequence number"), reader.surplus())
    return _decode_request(op, reader)


def encode_racp(message: RacpMessage) -> bytes:
    """Wire bytes for any RACP message (responses use operator 0x00). ValueError for impossible requests."""
    if isinstance(message, RacpNumberOfRecords):
        return bytes([RacpOpCode.NUMBER_OF_RECORDS_RESPONSE, 0]) + uint_bytes(message.count, 2, "count")
    if isinstance(message, RacpResponseCode):
        return bytes([RacpOpCode.RESPONSE_CODE, 0]) + uint_bytes(message.request_op_code, 1, "op code") \
            + uint_bytes(message.response_value, 1, "response value")
    if isinstance(message, RacpLatestSequence):
        return bytes([RacpOpCode.OMRON_LATEST_SEQUENCE_RESPONSE, 0]) + uint_bytes(
            message.sequence_number, 2, "sequence number")
    out = bytes([message.op_code, message.operator])
    count = _FILTER_OPERATORS.get(message.operator) if message.op_code in _RECORD_OPS else None
    if count is None:
        if message.filter_type is not None or message.sequence_numbers or message.operand:
            raise ValueError("this operator takes no operand")
        return out
    if message.filter_type is None:
        raise ValueError("this operator needs a filter type")
    out += uint_bytes(message.filter_type, 1, "filter type")
    if message.filter_type in _SEQUENCE_FILTERS:
        if len(message.sequence_numbers) != count or message.operand:
            raise ValueError(f"this operator needs exactly {count} sequence number(s)")
        return out + b"".join(uint_bytes(n, 2, "sequence number") for n in message.sequence_numbers)
    if message.sequence_numbers:
        raise ValueError("sequence numbers need a sequence-number filter type")
    return out + message.operand


class RacpCodec(SingleFrameCodec):
    name = "racp"
    summary = "Bluetooth Record Access Control Point (0x2A52) requests and responses"

    def decode(self, frame: bytes) -> RacpMessage:
        return decode_racp(frame)

    def readings(self, decoded: RacpMessage, context: ReadingContext) -> list[Reading]:
        return []  # control messages, not measurements

"""TensorBoard scalar summaries written without TensorFlow.

A TensorBoard event file is a TFRecord file (length, masked CRC-32C, payload, masked
CRC-32C) of ``Event`` protocol buffers. Scalars need three small messages, encoded here by
hand, so a search (synthetic ones included) can log reward, baseline, entropy and
per-decision probabilities without importing TensorFlow.

Example:
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with ScalarWriter(folder) as writer:
    ...     writer.scalars(1, {"reward": 0.5, "entropy": 1.25})
    >>> [(e["step"], e["tag"], e["value"]) for e in read_scalars(folder)]
    [(1, 'entropy', 1.25), (1, 'reward', 0.5)]
"""

from __future__ import annotations

import glob
import os
import socket
import struct
import time
from typing import Mapping

_CRC_TABLE = []
for _n in range(256):
    _c = _n
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as TFRecord uses.

    Example:
        >>> hex(crc32c(b"123456789"))
        '0xe3069283'
    """
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field_bytes(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(step: int, wall_time: float, summary: bytes | None = None, file_version: str | None = None) -> bytes:
    out = bytes([0x09]) + struct.pack("<d", wall_time) + bytes([0x10]) + _varint(int(step))
    if file_version is not None:
        out += _field_bytes(3, file_version.encode())
    if summary is not None:
        out += _field_bytes(5, summary)
    return out


def _scalar_value(tag: str, value: float) -> bytes:
    return _field_bytes(1, tag.encode()) + bytes([0x15]) + struct.pack("<f", float(value))


def _record(payload: bytes) -> bytes:
    header = struct.pack("<Q", len(payload))
    return header + struct.pack("<I", _masked_crc(header)) + payload + struct.pack("<I", _masked_crc(payload))


class ScalarWriter:
    """Appends scalar summaries to a new TensorBoard event file in ``logdir``."""

    def __init__(self, logdir: str):
        os.makedirs(logdir, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}"
        self.path = os.path.join(logdir, name)
        self._file = open(self.path, "ab")
        self._file.write(_record(_event(0, time.time(), file_version="brain.Event:2")))
        self._file.flush()

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        """Writes ``{tag: value}`` at ``step`` (one event) and flushes."""
        summary = b"".join(_field_bytes(1, _scalar_value(tag, v)) for tag, v in sorted(values.items()))
        self._file.write(_record(_event(step, time.time(), summary=summary)))
        self._file.flush()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ----------------------------------------------------------------------------- reading
def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def _fields(data: bytes):
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(data, pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        elif wire == 2:
            length, pos = _read_varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield number, value


def read_scalars(logdir: str) -> list[dict]:
    """Reads back the scalars of every event file in ``logdir`` (checks the CRCs)."""
    out = []
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos + 12 <= len(data):
            header = data[pos:pos + 8]
            (length,) = struct.unpack("<Q", header)
            if struct.unpack("<I", data[pos + 8:pos + 12])[0] != _masked_crc(header):
                raise ValueError(f"{path}: bad record length checksum at byte {pos}")
            payload = data[pos + 12:pos + 12 + length]
            if struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])[0] != _masked_crc(payload):
                raise ValueError(f"{path}: bad record checksum at byte {pos}")
            pos += 16 + length
            step = 0
            for number, value in _fields(payload):
                if number == 2:
                    step = value
                elif number == 5:
                    for _, entry in _fields(value):
                        fields = dict(_fields(entry))
                        out.append({"step": step, "tag": fields[1].decode(),
                                    "value": struct.unpack("<f", fields[2])[0]})
    return out

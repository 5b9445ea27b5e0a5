"""CRC-64/XZ (the checksum OSS reports as x-oss-hash-crc64ecma), written independently of the
SDKs so the tests do not take an SDK's word for its own checksum."""

_POLY = 0xC96C5795D7870F42  # ECMA-182, reflected
_MASK = 0xFFFFFFFFFFFFFFFF


def _table():
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _table()


def crc64(data, crc=0):
    """CRC-64/XZ of `data`, continuing from `crc` (the CRC of the bytes before it)."""
    crc ^= _MASK
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ _MASK

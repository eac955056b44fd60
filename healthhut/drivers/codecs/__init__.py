"""Pure protocol codecs: bytes in, typed values out, no I/O."""

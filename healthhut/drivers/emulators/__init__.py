"""Emulated devices speaking the same bytes as the real ones, with misbehaviour knobs."""

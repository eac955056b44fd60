"""Bluetooth LE transport and the per-family BLE drivers."""

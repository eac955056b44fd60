"""The daemon: driver supervision, attribution, clock correction, alerts, MQTT events."""

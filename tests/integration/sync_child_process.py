"""The sync service as its own process, for the SIGKILL test: `python sync_child_process.py DB BASE_URL`."""

from __future__ import annotations

import sys
from datetime import timedelta

from healthhut.config import parse_config
from healthhut.sync.service import run_sync, settings_from_config


def main() -> None:
    db, base_url = sys.argv[1], sys.argv[2]
    config = parse_config({"store": {"path": db},
                           "platform": {"base_url": base_url, "batch_size": 50, "timeout_connect": 2,
                                        "timeout_read": 5}}, "sync-kill-test")
    # A one-second lease so a killed predecessor's rows come back quickly; idle poll short for the test.
    settings = settings_from_config(config.platform, lease=timedelta(seconds=1), idle_poll=0.2, concurrency=2)
    run_sync(config, settings=settings)


if __name__ == "__main__":
    main()

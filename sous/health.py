"""``python -m sous.health``: the container health check, for ``sous serve`` and ``sous worker``
alike (the image runs either).

* A worker touches ``SOUS_ALIVE_FILE`` each heartbeat only while its heartbeats reach
  PostgreSQL (see :func:`sous.worker.run_worker`): the file exists and is younger than
  ``SOUS_ALIVE_MAX_AGE`` seconds (60) when the worker can take jobs. A stale file is unhealthy.
* Without that file (``sous serve``, or a worker that never reached the database), the check is
  ``GET /readyz`` on ``127.0.0.1:$SOUS_PORT``: 200 when the API answers and its database is
  reachable.

Exit status 0: healthy; 1: not (with the reason on standard error). Only the standard library
is imported: the check runs every few seconds.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping

DEFAULT_MAX_AGE = 60.0


def check(env: Mapping[str, str], now: float | None = None) -> str | None:
    """``None`` when healthy, else why not."""
    alive = env.get("SOUS_ALIVE_FILE")
    if alive and os.path.exists(alive):
        age = (time.time() if now is None else now) - os.path.getmtime(alive)
        most = float(env.get("SOUS_ALIVE_MAX_AGE") or DEFAULT_MAX_AGE)
        if age > most:
            return f"the worker's last heartbeat to the database was {age:.0f}s ago (> {most:.0f}s)"
        return None
    port = int(env.get("SOUS_PORT") or 8000)
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            status = int(answer.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except OSError as exc:
        return f"{url}: {exc}"
    return None if status == 200 else f"{url} answered {status}"


def main() -> int:
    problem = check(os.environ)
    if problem is not None:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The same-run baseline of `make bench`: the server without the ledger's outbox rows.

`bench.run` starts the baseline server with this directory on PYTHONPATH, so every process
of it (uvicorn's workers too) imports this at start-up, which replaces
`ledger.movement_events`: a movement then writes everything but its events (every other
event is unchanged). For the benchmark only; nothing else puts this directory on a path.
"""

from __future__ import annotations

from typing import Any


def _no_events(*_args: Any) -> list[dict[str, Any]]:
    return []


try:
    from banking.ledger import service as _ledger
except ImportError:  # pragma: no cover - not the service's interpreter
    pass
else:
    _ledger.movement_events = _no_events  # type: ignore[assignment]

"""CPU per call of ``ServiceClient`` over HTTP: what one service pays to call another in ``--processes``.

    .venv/bin/python loadtest/service_client.py --requests 4000 --rounds 3

The upstream is ``gateway_client.py``'s (a process of its own: uvicorn, a JSON answer of 300 bytes) on
127.0.0.1; 16 calls in flight, each a POST with a JSON body and an ``Idempotency-Key`` as payments' confirmation
of an order, its answer read whole. The figure is this process's CPU time (user + system) per call. To compare
two versions of the client, run the script under each (``PYTHONPATH=<other tree>/src``), alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "loadtest"))

from gateway_client import measure, upstream  # noqa: E402

from boxoffice.platform.clients import ServiceClient  # noqa: E402


async def one_round(base: str, requests: int) -> float:
    client = ServiceClient("booking", base_url=base, headers={"x-boxoffice-internal": "t" * 64})

    async def one() -> None:
        answer = await client.post(
            "/internal/orders/0192f0b2-0000-7000-8000-000000000000/confirm",
            json={"hold_id": "0192f0b2-0000-7000-8000-000000000001", "hold_version": 3, "payment_id": "p" * 36},
            headers={"Idempotency-Key": "p" * 36},
        )
        assert answer.status_code == 201 and answer.content

    try:
        return await measure(one, requests)
    finally:
        await client.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with upstream() as base:
        rounds = [asyncio.run(one_round(base, args.requests)) for _ in range(args.rounds)]
    print(f"ServiceClient over HTTP: median {statistics.median(rounds):.0f} µs of CPU per call "
          f"(rounds: {', '.join(f'{r:.0f}' for r in rounds)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

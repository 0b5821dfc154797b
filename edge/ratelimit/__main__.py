"""`python -m edge.ratelimit --listen 127.0.0.1:8081 [--limits SPEC]`: the edge's rate-limit service.

Limits come from --limits, else CRM_RATE_LIMITS, else the seed's tiers (see limits.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Sequence

from edge.ratelimit.descriptors import DEFAULT_ADDRESS, DOMAIN
from edge.ratelimit.limits import Limits
from edge.ratelimit.server import RateLimiter, serve

log = logging.getLogger("crm.edge.ratelimit")


async def _run(listen: str, limiter: RateLimiter) -> None:
    server = await serve(listen, limiter)
    log.info("rate-limit service on %s (domain %s): %s", listen, limiter.domain, limiter.limits.describe())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edge.ratelimit", description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", default=os.environ.get("CRM_RATE_LIMIT_LISTEN", DEFAULT_ADDRESS), metavar="HOST:PORT")
    p.add_argument("--limits", default=os.environ.get("CRM_RATE_LIMITS", ""), metavar="SPEC",
                   help="e.g. standard=1000/h,premium=5000/h,api_integration=10000/h,bulk=100/h (partial specs "
                        "override the defaults)")
    p.add_argument("--domain", default=DOMAIN)
    args = p.parse_args(argv)
    try:
        limits = Limits.parse(args.limits)
    except ValueError as exc:
        p.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    asyncio.run(_run(args.listen, RateLimiter(limits, domain=args.domain)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

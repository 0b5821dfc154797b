"""Serve the CRM services chosen by CRM_SERVICES (all by default) until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal

from services.kernel.host import Host, load_modules
from services.kernel.settings import Settings
from services.kernel.telemetry import setup


async def serve() -> None:
    settings = Settings.from_env()
    setup(settings)
    host = Host(settings, load_modules(settings.services))
    await host.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    # Graceful: not serving at once, in-flight rpcs finish within the grace, then what the
    # process owes is flushed (Host.stop). A clean stop exits 0.
    await host.stop(grace=settings.shutdown_grace_seconds)


def main() -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(serve())


if __name__ == "__main__":
    main()

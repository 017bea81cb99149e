"""Run the ingestion API under uvicorn in the caller's event loop, with its gateway."""

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable, Generator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import uvicorn

from bus.transport import Transport
from cloud.ingestion.api import create_app
from cloud.ingestion.gateway import Gateway
from contracts import DEFAULT_ROOT

log = logging.getLogger(__name__)

# Open SSE streams end when the gateway closes its board; this only bounds a stuck one.
_GRACEFUL_SHUTDOWN_S = 3


class _Server(uvicorn.Server):
    """uvicorn, minus its signal handlers (the caller owns signals and cancels us)."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.ready.set()


@dataclass
class Ingestion:
    """A running ingestion service."""

    port: int
    gateway: Gateway
    _tasks: tuple["asyncio.Task[None]", ...]

    async def until_stopped(self) -> None:
        """Return (or raise) when the HTTP server or the gateway stops by itself."""
        done, _ = await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
        raise RuntimeError("the ingestion service stopped by itself")


@asynccontextmanager
async def running(
    transport: Transport,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    root: str = DEFAULT_ROOT,
    publish_timeout_s: float = 3.0,
) -> AsyncIterator[Ingestion]:
    """Serve HTTP on `host:port` (0: a free port) for the duration of the block.

    A POST or DELETE whose event the broker has not acknowledged within `publish_timeout_s`
    is answered 503.

    Raises:
        OSError: the address cannot be bound (for example, the port is taken).
    """
    gateway = Gateway(transport, root=root, publish_timeout_s=publish_timeout_s)
    # Bound here, not by uvicorn: a taken port is an OSError for the caller, not a sys.exit.
    sock = socket.create_server(
        (host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET
    )
    bound = int(sock.getsockname()[1])
    config = uvicorn.Config(
        create_app(gateway),
        lifespan="off",
        log_config=None,  # the caller configures logging
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S,
    )
    server = _Server(config)
    gateway_task = asyncio.create_task(gateway.run(), name="ingestion.gateway")
    http_task = asyncio.create_task(server.serve(sockets=[sock]), name="ingestion.http")
    ready = asyncio.create_task(server.ready.wait(), name="ingestion.ready")
    try:
        await asyncio.wait({ready, http_task}, return_when=asyncio.FIRST_COMPLETED)
        if http_task.done():
            http_task.result()
            raise RuntimeError("the HTTP server stopped while starting")
        log.info("ingestion: HTTP on %s:%d, broker %s", host, bound, transport)
        yield Ingestion(port=bound, gateway=gateway, _tasks=(gateway_task, http_task))
    finally:
        ready.cancel()
        gateway_task.cancel()  # closes the status board, which ends every SSE stream
        await asyncio.gather(gateway_task, return_exceptions=True)
        server.should_exit = True
        await asyncio.gather(http_task, return_exceptions=True)
        sock.close()


async def serve(
    transport: Transport,
    *,
    host: str = "127.0.0.1",
    port: int,
    root: str = DEFAULT_ROOT,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Run the ingestion service until cancelled; `on_ready` gets the bound port."""
    async with running(transport, host=host, port=port, root=root) as ingestion:
        if on_ready is not None:
            on_ready(ingestion.port)
        await ingestion.until_stopped()

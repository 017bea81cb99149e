"""The HTTP API: request, follow and cancel deliveries. No I/O of its own beyond the gateway.

Field rules are the contract's: the body reuses its types (so OpenAPI shows the ranges and
patterns), and every request is then built as a `DeliveryRequested`, whose validation is final.
"""

import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any

from fastapi import FastAPI, Header, HTTPException, Path, Query, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeInt,
    ValidationError,
)

from cloud.ingestion.gateway import BrokerUnavailableError, Gateway
from cloud.ingestion.statuses import Follower
from contracts.events import (
    DeliveryCancellationRequested,
    DeliveryRequested,
    DeliveryStatusChanged,
    Reason,
    Weight,
)
from contracts.ids import Latitude, Location, Longitude, PackageSize, TopicId
from contracts.requests import delivery_request
from contracts.topics import to_filter

log = logging.getLogger(__name__)

# How long a client should wait before retrying after a 503: about one reconnect backoff.
RETRY_AFTER_S = 2
_REQUEST_IDS = uuid.UUID("5b0f6f2e-2a57-4d1c-9a3e-6c7d1e0f4a21")  # namespace of request event ids

DeliveryId = Annotated[TopicId, Path(description="The delivery id (letters, digits, - and _).")]


def _text(value: object) -> object:
    # Lax mode would read a number as a Unix time; on the bus a time is RFC 3339 text only.
    # A ValueError, not a TypeError: pydantic turns only the former into a validation error.
    if not isinstance(value, str):
        msg = "expected an ISO 8601 time with a time zone, as a string"
        raise ValueError(msg)  # noqa: TRY004
    return value


class Position(BaseModel):
    """A point on the map, in degrees (WGS-84)."""

    # Strict: "47.3" is not a number, as on the bus.
    model_config = ConfigDict(strict=True, extra="ignore", allow_inf_nan=False)

    lat: Latitude
    lon: Longitude


class DeliveryBody(BaseModel):
    """What a client sends to ask for a delivery (the fields of `DeliveryRequested`)."""

    # Not strict as a whole: FastAPI validates the parsed JSON, where an enum or a date is a
    # string. Numbers are strict field by field.
    model_config = ConfigDict(
        extra="ignore",
        allow_inf_nan=False,
        json_schema_extra={
            "examples": [
                {
                    "pickup": {"lat": 47.38, "lon": 8.545},
                    "dropoff": {"lat": 47.374, "lon": 8.55},
                    "weight_kg": 1.5,
                    "size": "small",
                    "deadline": "2030-01-01T12:00:00Z",
                    "tag": "fragile",
                    "owner_id": "shop-42",
                    "delivery_id": "order-1001",
                }
            ]
        },
    )

    pickup: Position
    dropoff: Position
    weight_kg: Annotated[Weight, Field(strict=True)]
    size: PackageSize = PackageSize.SMALL
    deadline: Annotated[AwareDatetime, BeforeValidator(_text)] | None = None
    tag: str | None = Field(default=None, description="A package tag, e.g. fragile.")
    owner_id: TopicId
    delivery_id: TopicId | None = Field(
        default=None,
        description="Choose it to make retries safe: the same id is the same request. "
        "Default: a new one.",
    )

    def to_event(self) -> DeliveryRequested:
        """The contract event; raises pydantic's ValidationError naming any bad field."""
        return delivery_request(
            pickup=_location(self.pickup),
            dropoff=_location(self.dropoff),
            weight_kg=self.weight_kg,
            size=self.size,
            deadline=self.deadline,
            owner_id=self.owner_id,
            tag=self.tag,
            delivery_id=self.delivery_id,
        )


class Accepted(BaseModel):
    """The broker has the event; follow `status_url` for what the services make of it."""

    delivery_id: str
    status_url: str


class Problem(BaseModel):
    """Why a call was not served."""

    detail: str


def request_event_id(root: str, delivery_id: str) -> str:
    """The envelope id of a delivery's request: the same delivery id gives the same event.

    Consumers dedupe by (source, id), so a retried POST is applied once by every service.
    """
    topic = to_filter(DeliveryRequested.topic, root=root, delivery_id=delivery_id)
    return str(uuid.uuid5(_REQUEST_IDS, topic))


def create_app(gateway: Gateway, *, heartbeat_s: float = 15.0) -> FastAPI:
    """The ingestion API over `gateway` (which the caller runs)."""
    app = FastAPI(
        title="Murmuration ingestion",
        version="1",
        description="Request, follow and cancel drone deliveries. See docs/ingestion.md.",
    )
    app.add_exception_handler(BrokerUnavailableError, _broker_unavailable)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    unavailable: dict[int | str, dict[str, Any]] = {
        503: {"model": Problem, "description": "The broker did not acknowledge in time."}
    }

    @app.post(
        "/deliveries",
        status_code=status.HTTP_202_ACCEPTED,
        responses=unavailable,
        summary="Request a delivery",
    )
    async def request_delivery(body: DeliveryBody, response: Response) -> Accepted:
        """Answered 202 only once the broker acknowledged the request (QoS 1 PUBACK)."""
        try:
            event = body.to_event()
        except ValidationError as exc:
            raise RequestValidationError(_body_errors(exc.errors())) from exc
        try:
            await gateway.publish(event, event_id=request_event_id(gateway.root, event.delivery_id))
        except BrokerUnavailableError as exc:
            log.warning(
                "delivery %s not requested: %s",
                event.delivery_id,
                exc,
                extra={"delivery_id": event.delivery_id},
            )
            raise
        log.info(
            "delivery %s requested",
            event.delivery_id,
            extra={"delivery_id": event.delivery_id},
        )
        return _accepted(event.delivery_id, response)

    @app.get(
        "/deliveries/{delivery_id}",
        response_model_exclude_none=True,
        responses={404: {"model": Problem, "description": "No status known for it."}},
        summary="The current status of a delivery",
    )
    async def delivery_status(delivery_id: DeliveryId) -> DeliveryStatusChanged:
        """The newest retained status this service has seen."""
        current = gateway.board.get(delivery_id)
        if current is None:
            raise HTTPException(404, f"no status known for delivery {delivery_id}")
        return current

    @app.delete(
        "/deliveries/{delivery_id}",
        status_code=status.HTTP_202_ACCEPTED,
        responses=unavailable,
        summary="Ask to cancel a delivery",
    )
    async def cancel_delivery(
        delivery_id: DeliveryId,
        response: Response,
        reason: Annotated[Reason | None, Query(description="Why, for the record.")] = None,
    ) -> Accepted:
        """Granted before pickup, refused after it: the status says which."""
        event = DeliveryCancellationRequested(delivery_id=delivery_id, reason=reason)
        await gateway.publish(event)
        log.info(
            "delivery %s: cancellation requested", delivery_id, extra={"delivery_id": delivery_id}
        )
        return _accepted(delivery_id, response)

    @app.get(
        "/deliveries/{delivery_id}/events",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
        summary="Follow a delivery's status changes (server-sent events)",
    )
    async def delivery_events(
        delivery_id: DeliveryId,
        last_event_id: Annotated[NonNegativeInt | None, Header()] = None,
    ) -> StreamingResponse:
        """One `status` event per change, the current one first; ends at a terminal stage."""
        # Follow before answering: whatever is published once the client has the headers
        # is on this stream.
        follower = gateway.board.follow(
            delivery_id, after_version=-1 if last_event_id is None else last_event_id
        )
        return StreamingResponse(
            _sse(follower, heartbeat_s),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return app


def _location(position: Position) -> Location:
    return Location(latitude=position.lat, longitude=position.lon)


def _accepted(delivery_id: str, response: Response) -> Accepted:
    status_url = f"/deliveries/{delivery_id}"
    response.headers["Location"] = status_url
    return Accepted(delivery_id=delivery_id, status_url=status_url)


async def _sse(follower: Follower, heartbeat_s: float) -> AsyncIterator[str]:
    async for current in follower.statuses(heartbeat_s):
        if current is None:
            yield ": keep-alive\n\n"  # a comment: proxies see traffic, clients ignore it
            continue
        data = current.model_dump_json(exclude_none=True)
        yield f"event: status\nid: {current.version}\ndata: {data}\n\n"


# The body's names for the contract event's fields, where they differ.
_BODY_NAMES: dict[tuple[str | int, ...], tuple[str | int, ...]] = {
    ("package", "tag"): ("tag",),
    ("package", "weight_kg"): ("weight_kg",),
    ("package", "size"): ("size",),
    ("package", "package_id"): ("delivery_id",),
}


def _body_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """The contract model's errors, located in the request body."""
    located = []
    for error in errors:
        loc = tuple(error["loc"])
        located.append({**error, "loc": ("body", *_BODY_NAMES.get(loc, loc))})
    return located


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    detail = [_public(error) for error in exc.errors()]
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(detail)})


def _public(error: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's error object, minus the rejected input, with exceptions as their text.

    The input can be large, and NaN (which Python's JSON parser accepts) cannot be sent back
    as JSON at all; an exception in `ctx` would otherwise be rendered as `{}`.
    """
    public = {key: value for key, value in error.items() if key != "input"}
    if isinstance(ctx := public.get("ctx"), dict):
        public["ctx"] = {k: str(v) if isinstance(v, Exception) else v for k, v in ctx.items()}
    return public


async def _broker_unavailable(request: Request, exc: Exception) -> JSONResponse:
    if delivery_id := request.path_params.get("delivery_id"):
        log.warning(
            "%s %s: 503, %s",
            request.method,
            request.url.path,
            exc,
            extra={"delivery_id": delivery_id},
        )
    return JSONResponse(
        status_code=503,
        content={"detail": f"broker unavailable: {exc}; retry later"},
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )

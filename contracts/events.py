"""Every event that crosses the broker. This module is the contract.

Each class is the `data` of one CloudEvents type. Known fields are strict (types, ranges,
patterns); unknown fields are ignored, so a producer may add an optional field within a
version. A breaking change is a new type (`....v2`) published alongside the old one.

Longer than our other modules on purpose: the whole contract in one file is what an outsider
reads, and what `murmur contract` renders, in the order of the choreography.
"""

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
)

from contracts import topics
from contracts.ids import Location, PackageSize, Percent, TopicId
from contracts.states import DeliveryStage

Reason = Annotated[str, Field(min_length=1, max_length=500)]
Weight = Annotated[float, Field(gt=0, le=100)]


class Event(BaseModel):
    """Base of all event data: immutable; known fields strict, unknown fields ignored."""

    # JSON has no NaN or infinity: refuse them here rather than send a null the reader refuses.
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True, allow_inf_nan=False)

    type: ClassVar[str]
    topic: ClassVar[str]  # relative to the root, default "murmur/v1"
    retained: ClassVar[bool] = False
    qos: ClassVar[int] = 1
    # May a bounded store-and-forward buffer drop it under pressure? Never for job updates.
    droppable: ClassVar[bool] = False
    # Is it a snapshot, which a newer one on the same topic makes worthless before it is sent?
    # Retained status changes are not: a follower wants every version.
    snapshot: ClassVar[bool] = False

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: object) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # Checked when the class is declared, not when a message arrives.
        event_type = cls.__dict__.get("type")
        template = getattr(cls, "topic", None)
        if template is None:
            if event_type is None:
                return  # an abstract base without a topic of its own
            msg = f"{cls.__name__}: type {event_type!r} has no topic"
            raise TypeError(msg)
        try:
            params = topics.template_params(template)
        except ValueError as exc:
            msg = f"{cls.__name__}.topic: {exc}"
            raise TypeError(msg) from exc
        if not params:
            msg = f"{cls.__name__}.topic {template!r} names no {{field}}, so it has no subject"
            raise TypeError(msg)
        for name in params:
            if name not in cls.model_fields:
                msg = f"{cls.__name__}.topic {template!r}: {{{name}}} is not a field"
                raise TypeError(msg)
        if event_type is None:
            return  # an abstract base such as _JobUpdate
        if event_type in REGISTRY:
            msg = f"{cls.__name__}: type {event_type!r} already used by {REGISTRY[event_type]}"
            raise TypeError(msg)
        REGISTRY[event_type] = cls

    def topic_values(self) -> dict[str, str]:
        """The topic parameters this event fills, as strings."""
        return {name: str(getattr(self, name)) for name in topics.template_params(self.topic)}

    def resolved_topic(self, root: str = topics.DEFAULT_ROOT) -> str:
        """The full topic this event is published on."""
        return topics.join(root, topics.fill(self.topic, self.topic_values()))

    def subject(self) -> str:
        """The CloudEvents subject: the entity the topic is about (its first parameter)."""
        first = topics.template_params(self.topic)[0]
        return str(getattr(self, first))


REGISTRY: dict[str, type[Event]] = {}


# --- clients -> services ---------------------------------------------------------------


class PackageInfo(BaseModel):
    """What is being carried."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True, allow_inf_nan=False)

    package_id: TopicId
    size: PackageSize
    weight_kg: Weight
    tag: Annotated[str, Field(max_length=64)] | None = None


class DeliveryRequested(Event):
    """A client asks for a package to be carried; the client picks the delivery id."""

    type: ClassVar[str] = "murmur.delivery.requested.v1"
    topic: ClassVar[str] = "deliveries/{delivery_id}/requested"

    delivery_id: TopicId
    owner_id: TopicId
    pickup: Location
    dropoff: Location
    deadline: AwareDatetime | None = None
    expedited: bool = False
    package: PackageInfo


class DeliveryCancellationRequested(Event):
    """A client asks to cancel; granted until pickup, refused after it."""

    type: ClassVar[str] = "murmur.delivery.cancellation_requested.v1"
    topic: ClassVar[str] = "deliveries/{delivery_id}/cancel-requested"

    delivery_id: TopicId
    reason: Reason | None = None


# --- package service ---------------------------------------------------------------------


class PackageRejectionReason(StrEnum):
    """Why the Package service refused a package."""

    OVERWEIGHT = "overweight"
    TOO_LARGE = "too_large"
    TAG_REFUSED = "tag_refused"
    DUPLICATE_PACKAGE = "duplicate_package"


class PackageReady(Event):
    """The package is valid and recorded; it can be picked up."""

    type: ClassVar[str] = "murmur.package.ready.v1"
    topic: ClassVar[str] = "packages/{package_id}/ready"

    package_id: TopicId
    delivery_id: TopicId
    size: PackageSize
    weight_kg: Weight


class PackageRejected(Event):
    """The package cannot be carried; the delivery is compensated."""

    type: ClassVar[str] = "murmur.package.rejected.v1"
    topic: ClassVar[str] = "packages/{package_id}/rejected"

    package_id: TopicId
    delivery_id: TopicId
    reason: PackageRejectionReason
    detail: Reason | None = None


class PackageStranded(Event):
    """A package left on board or released away from its dropoff after a failure past pickup."""

    type: ClassVar[str] = "murmur.package.stranded.v1"
    topic: ClassVar[str] = "packages/{package_id}/stranded"

    package_id: TopicId
    delivery_id: TopicId
    drone_id: TopicId | None = None
    location: Location


# --- scheduler -> agents and clients -------------------------------------------------------


class JobOffered(Event):
    """The scheduler offers one delivery job to one drone; the drone decides."""

    type: ClassVar[str] = "murmur.job.offered.v1"
    topic: ClassVar[str] = "drones/{drone_id}/jobs/{job_id}/offer"

    drone_id: TopicId
    job_id: TopicId
    delivery_id: TopicId
    pickup: Location
    dropoff: Location
    payload_kg: Weight
    answer_by: AwareDatetime


class JobCancelled(Event):
    """The scheduler withdraws a job (compensation, client cancel, time-out)."""

    type: ClassVar[str] = "murmur.job.cancelled.v1"
    topic: ClassVar[str] = "drones/{drone_id}/jobs/{job_id}/cancel"

    drone_id: TopicId
    job_id: TopicId
    delivery_id: TopicId
    reason: Reason


class DroneAssigned(Event):
    """A drone accepted the delivery's job."""

    type: ClassVar[str] = "murmur.delivery.drone_assigned.v1"
    topic: ClassVar[str] = "deliveries/{delivery_id}/assigned"

    delivery_id: TopicId
    job_id: TopicId
    drone_id: TopicId


class DeliveryUnassignable(Event):
    """No drone could take the delivery before its deadline."""

    type: ClassVar[str] = "murmur.delivery.unassignable.v1"
    topic: ClassVar[str] = "deliveries/{delivery_id}/unassignable"

    delivery_id: TopicId
    reason: Reason


# --- job updates: agent -> services, all on one topic ----------------------------------------


class JobRejectionReason(StrEnum):
    """Why a drone turned an offer down."""

    BUSY = "busy"
    PAYLOAD_OVER_CAPACITY = "payload_over_capacity"
    INSUFFICIENT_ENERGY = "insufficient_energy"
    FC_NOT_READY = "fc_not_ready"
    OFFER_EXPIRED = "offer_expired"


class JobPhase(StrEnum):
    """Where a drone is in its job, in flight order."""

    TO_PICKUP = "to_pickup"
    LOADING = "loading"
    TO_DROPOFF = "to_dropoff"
    RELEASING = "releasing"
    RETURNING = "returning"
    LANDING = "landing"


class PackageState(StrEnum):
    """Where the package is when a job ends."""

    NOT_LOADED = "not_loaded"
    ON_BOARD = "on_board"
    RELEASED = "released"


class _JobUpdate(Event):
    topic: ClassVar[str] = "drones/{drone_id}/jobs/{job_id}/update"

    drone_id: TopicId
    job_id: TopicId
    delivery_id: TopicId


class JobAccepted(_JobUpdate):
    """The drone takes the job."""

    type: ClassVar[str] = "murmur.job.accepted.v1"


class JobRejected(_JobUpdate):
    """The drone turns the job down."""

    type: ClassVar[str] = "murmur.job.rejected.v1"

    reason: JobRejectionReason
    detail: Reason | None = None


class JobProgressed(_JobUpdate):
    """The drone entered a new phase of the job."""

    type: ClassVar[str] = "murmur.job.progressed.v1"

    phase: JobPhase
    position: Location | None = None
    eta_s: NonNegativeFloat | None = None


class JobSucceeded(_JobUpdate):
    """The package was released at the dropoff; the drone may still be flying home."""

    type: ClassVar[str] = "murmur.job.succeeded.v1"

    location: Location | None = None


class JobFailed(_JobUpdate):
    """The job ended without delivering; `package_state` says where the package is."""

    type: ClassVar[str] = "murmur.job.failed.v1"

    reason: Reason
    package_state: PackageState
    location: Location | None = None


class JobCancellationRefused(_JobUpdate):
    """The drone refuses a cancellation (the package is already on board)."""

    type: ClassVar[str] = "murmur.job.cancellation_refused.v1"

    reason: Reason


# --- delivery service -> clients --------------------------------------------------------------


class DeliveryStatusChanged(Event):
    """The retained status of one delivery; `version` grows with every change."""

    type: ClassVar[str] = "murmur.delivery.status_changed.v1"
    topic: ClassVar[str] = "deliveries/{delivery_id}/status"
    retained: ClassVar[bool] = True

    delivery_id: TopicId
    stage: DeliveryStage
    version: NonNegativeInt
    drone_id: TopicId | None = None
    job_id: TopicId | None = None
    eta: AwareDatetime | None = None
    last_known_location: Location | None = None
    reason: Reason | None = None


class DeliveryTraceRequested(Event):
    """Ask the Delivery service for one delivery's journal; answered on `.../trace`."""

    type: ClassVar[str] = "murmur.delivery.trace_requested.v1"
    topic: ClassVar[str] = "deliveries/{delivery_id}/trace-requested"

    delivery_id: TopicId
    request_id: TopicId


class TraceEntry(BaseModel):
    """One event of a delivery's journal: who published what, and which event caused it."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    id: Annotated[str, Field(min_length=1, max_length=128)]
    time: AwareDatetime
    source: Annotated[str, Field(min_length=1, max_length=256)]
    type: Annotated[str, Field(min_length=1, max_length=128)]
    causationid: Annotated[str, Field(max_length=128)] | None = None
    summary: Annotated[str, Field(max_length=200)] | None = None


TRACE_LIMIT = 500


class DeliveryTraced(Event):
    """The journal of one delivery in arrival order, answering the request `request_id`."""

    type: ClassVar[str] = "murmur.delivery.traced.v1"
    topic: ClassVar[str] = "deliveries/{delivery_id}/trace"

    delivery_id: TopicId
    request_id: TopicId
    entries: Annotated[list[TraceEntry], Field(max_length=TRACE_LIMIT)]
    truncated: bool = False


# --- drones -> everyone ---------------------------------------------------------------------


class Link(StrEnum):
    """A participant's connection state, as its retained status says."""

    ONLINE = "online"
    OFFLINE = "offline"


class DroneStatus(Event):
    """Retained link status; the last will says offline. `session` orders wills and births."""

    type: ClassVar[str] = "murmur.drone.status.v1"
    topic: ClassVar[str] = "drones/{drone_id}/status"
    retained: ClassVar[bool] = True

    drone_id: TopicId
    link: Link
    session: NonNegativeInt


class Availability(StrEnum):
    """Whether a drone can take a job."""

    IDLE = "idle"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"


class DroneState(Event):
    """Retained, published on change: what a scheduler needs to decide feasibility."""

    type: ClassVar[str] = "murmur.drone.state.v1"
    topic: ClassVar[str] = "drones/{drone_id}/state"
    retained: ClassVar[bool] = True
    snapshot: ClassVar[bool] = True

    drone_id: TopicId
    availability: Availability
    battery_pct: Percent
    energy_wh: NonNegativeFloat
    position: Location
    home: Location
    max_payload_kg: PositiveFloat
    job_id: TopicId | None = None


class TelemetryReported(Event):
    """Periodic flight data (QoS 0); the envelope's `sequence` orders it within a session."""

    type: ClassVar[str] = "murmur.drone.telemetry.v1"
    topic: ClassVar[str] = "drones/{drone_id}/telemetry"
    qos: ClassVar[int] = 0

    drone_id: TopicId
    session: NonNegativeInt
    position: Location
    ground_speed_mps: NonNegativeFloat
    climb_rate_mps: float
    heading_deg: Annotated[float, Field(ge=0, lt=360)]
    battery_pct: Percent
    phase: Annotated[str, Field(min_length=1, max_length=32)]
    job_id: TopicId | None = None
    eta_s: NonNegativeFloat | None = None


class DroneEventKind(StrEnum):
    """Things that happen to a drone that others may care about."""

    TAKEOFF = "takeoff"
    PACKAGE_LOADED = "package_loaded"
    PACKAGE_RELEASED = "package_released"
    LANDED = "landed"
    BATTERY_LOW = "battery_low"
    FAILSAFE_BATTERY = "failsafe_battery"
    FAILSAFE_GPS = "failsafe_gps"
    FAILSAFE_LINK = "failsafe_link"
    FAILSAFE_MOTOR = "failsafe_motor"
    FC_LINK_LOST = "fc_link_lost"
    FC_LINK_RESTORED = "fc_link_restored"


class DroneEvent(Event):
    """One notable happening on a drone."""

    type: ClassVar[str] = "murmur.drone.event.v1"
    topic: ClassVar[str] = "drones/{drone_id}/events"
    droppable: ClassVar[bool] = True

    drone_id: TopicId
    kind: DroneEventKind
    job_id: TopicId | None = None
    position: Location | None = None
    detail: Reason | None = None


# --- operators <-> drones --------------------------------------------------------------------


class CommandName(StrEnum):
    """Operator commands a drone understands."""

    HOLD = "hold"
    RESUME = "resume"
    RETURN = "return"
    LAND = "land"


class CommandResult(StrEnum):
    """MAVLink's MAV_RESULT vocabulary, so a reply maps onto a flight controller's ack."""

    ACCEPTED = "accepted"
    TEMPORARILY_REJECTED = "temporarily_rejected"
    DENIED = "denied"
    UNSUPPORTED = "unsupported"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"


class DroneCommand(Event):
    """An operator's command to one drone."""

    type: ClassVar[str] = "murmur.drone.command.v1"
    topic: ClassVar[str] = "drones/{drone_id}/cmd/{command}"

    drone_id: TopicId
    command: CommandName
    command_id: TopicId


class CommandReply(Event):
    """A drone's answer to one command."""

    type: ClassVar[str] = "murmur.drone.command_reply.v1"
    topic: ClassVar[str] = "drones/{drone_id}/cmd/reply"

    drone_id: TopicId
    command_id: TopicId
    command: CommandName
    result: CommandResult
    detail: Reason | None = None


# --- infrastructure --------------------------------------------------------------------------


class ServiceStatus(Event):
    """Retained link status of a service; its last will says offline."""

    type: ClassVar[str] = "murmur.service.status.v1"
    topic: ClassVar[str] = "services/{service}/status"
    retained: ClassVar[bool] = True

    service: TopicId
    link: Link
    session: NonNegativeInt


class DeadLetter(Event):
    """Input a component refused, with the reason and the original bytes."""

    type: ClassVar[str] = "murmur.dead_letter.v1"
    topic: ClassVar[str] = "dlq/{component}"

    component: TopicId
    reason: Annotated[str, Field(min_length=1, max_length=64)]
    detail: Annotated[str, Field(max_length=2000)]
    topic_name: Annotated[str, Field(max_length=65535)]
    payload_b64: str
    payload_size: NonNegativeInt
    payload_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    truncated: bool = False
    event_id: Annotated[str, Field(max_length=128)] | None = None
    event_type: Annotated[str, Field(max_length=128)] | None = None

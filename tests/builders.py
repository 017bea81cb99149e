"""Test data as plain functions: a valid event of each kind, changed by keyword overrides.

Each builder takes the event's fields as overrides, so a test names only what it is about:
`a_job_offer(drone_id="d-2")`. Values must have the model's Python types (enum members,
aware datetimes), since the models are strict; use `wire_dict`/`wire_bytes` to test raw JSON.
"""

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from contracts.envelope import Envelope
from contracts.events import (
    Availability,
    CommandName,
    CommandReply,
    CommandResult,
    DeadLetter,
    DeliveryCancellationRequested,
    DeliveryRequested,
    DeliveryStatusChanged,
    DeliveryTraced,
    DeliveryTraceRequested,
    DeliveryUnassignable,
    DroneAssigned,
    DroneCommand,
    DroneEvent,
    DroneEventKind,
    DroneState,
    DroneStatus,
    Event,
    JobAccepted,
    JobCancellationRefused,
    JobCancelled,
    JobFailed,
    JobOffered,
    JobPhase,
    JobProgressed,
    JobRejected,
    JobRejectionReason,
    JobSucceeded,
    Link,
    PackageInfo,
    PackageReady,
    PackageRejected,
    PackageRejectionReason,
    PackageState,
    PackageStranded,
    ServiceStatus,
    TelemetryReported,
    TraceEntry,
)
from contracts.ids import Location, PackageSize
from contracts.producers import expected_source
from contracts.states import DeliveryStage

E = TypeVar("E", bound=Event)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
DELIVERY = "del-0001"
PACKAGE = "pkg-0001"
OWNER = "owner-0001"
DRONE = "d-007"
JOB = "job-0001"
COMMAND = "cmd-0001"
SERVICE = "scheduler"
SOURCE = "/tests"


def a_location(**overrides: Any) -> Location:
    return Location(**{"latitude": 47.6062, "longitude": -122.3321, **overrides})


HOME = a_location(latitude=47.6000, longitude=-122.3300)
PICKUP = a_location(latitude=47.6062, longitude=-122.3321)
DROPOFF = a_location(latitude=47.6205, longitude=-122.3493)


# --- the envelope and the wire ---------------------------------------------------------------


def source_of(data: Event) -> str:
    """The source its producer carries (decoders refuse any other), or SOURCE where any goes."""
    return expected_source(data.type, data) or SOURCE


def an_envelope(data: E, **overrides: Any) -> Envelope[E]:
    """Wrap `data` as a CloudEvent; by default correlated to its delivery, if it has one."""
    options: dict[str, Any] = {
        "source": source_of(data),
        "time": T0,
        "correlationid": getattr(data, "delivery_id", None),
        **overrides,
    }
    return Envelope.new(data, **options)


def wire_dict(envelope: Envelope[Any]) -> dict[str, Any]:
    """The envelope as the JSON object a client in any language would see."""
    value: dict[str, Any] = json.loads(envelope.to_json())
    return value


def wire_bytes(value: object) -> bytes:
    """Any JSON value as a payload (NaN and infinity allowed, as a careless producer sends)."""
    return json.dumps(value).encode()


# --- clients -> services ---------------------------------------------------------------------


def a_package(**overrides: Any) -> PackageInfo:
    return PackageInfo(
        **{"package_id": PACKAGE, "size": PackageSize.SMALL, "weight_kg": 1.2, **overrides}
    )


def a_delivery_request(**overrides: Any) -> DeliveryRequested:
    return DeliveryRequested(
        **{
            "delivery_id": DELIVERY,
            "owner_id": OWNER,
            "pickup": PICKUP,
            "dropoff": DROPOFF,
            "deadline": T0 + timedelta(hours=2),
            "package": a_package(),
            **overrides,
        }
    )


def a_cancellation_request(**overrides: Any) -> DeliveryCancellationRequested:
    return DeliveryCancellationRequested(
        **{"delivery_id": DELIVERY, "reason": "changed my mind", **overrides}
    )


# --- package service ---------------------------------------------------------------------------


def a_package_ready(**overrides: Any) -> PackageReady:
    return PackageReady(
        **{
            "package_id": PACKAGE,
            "delivery_id": DELIVERY,
            "size": PackageSize.SMALL,
            "weight_kg": 1.2,
            **overrides,
        }
    )


def a_package_rejection(**overrides: Any) -> PackageRejected:
    return PackageRejected(
        **{
            "package_id": PACKAGE,
            "delivery_id": DELIVERY,
            "reason": PackageRejectionReason.OVERWEIGHT,
            **overrides,
        }
    )


def a_stranded_package(**overrides: Any) -> PackageStranded:
    return PackageStranded(
        **{
            "package_id": PACKAGE,
            "delivery_id": DELIVERY,
            "drone_id": DRONE,
            "location": DROPOFF,
            **overrides,
        }
    )


# --- scheduler ---------------------------------------------------------------------------------


def a_job_offer(**overrides: Any) -> JobOffered:
    return JobOffered(
        **{
            "drone_id": DRONE,
            "job_id": JOB,
            "delivery_id": DELIVERY,
            "pickup": PICKUP,
            "dropoff": DROPOFF,
            "payload_kg": 1.2,
            "answer_by": T0 + timedelta(seconds=10),
            **overrides,
        }
    )


def a_job_cancellation(**overrides: Any) -> JobCancelled:
    return JobCancelled(
        **{
            "drone_id": DRONE,
            "job_id": JOB,
            "delivery_id": DELIVERY,
            "reason": "package rejected",
            **overrides,
        }
    )


def a_drone_assignment(**overrides: Any) -> DroneAssigned:
    return DroneAssigned(**{"delivery_id": DELIVERY, "job_id": JOB, "drone_id": DRONE, **overrides})


def an_unassignable_delivery(**overrides: Any) -> DeliveryUnassignable:
    return DeliveryUnassignable(
        **{"delivery_id": DELIVERY, "reason": "no feasible drone before the deadline", **overrides}
    )


# --- job updates (agent) -----------------------------------------------------------------------


def _job(**overrides: Any) -> dict[str, Any]:
    return {"drone_id": DRONE, "job_id": JOB, "delivery_id": DELIVERY, **overrides}


def a_job_acceptance(**overrides: Any) -> JobAccepted:
    return JobAccepted(**_job(**overrides))


def a_job_rejection(**overrides: Any) -> JobRejected:
    return JobRejected(**_job(**{"reason": JobRejectionReason.BUSY, **overrides}))


def a_job_progress(**overrides: Any) -> JobProgressed:
    return JobProgressed(
        **_job(
            **{"phase": JobPhase.TO_PICKUP, "position": HOME, "eta_s": 120.0, **overrides},
        )
    )


def a_job_success(**overrides: Any) -> JobSucceeded:
    return JobSucceeded(**_job(**{"location": DROPOFF, **overrides}))


def a_job_failure(**overrides: Any) -> JobFailed:
    return JobFailed(
        **_job(
            **{
                "reason": "motor failure",
                "package_state": PackageState.NOT_LOADED,
                "location": HOME,
                **overrides,
            }
        )
    )


def a_cancellation_refusal(**overrides: Any) -> JobCancellationRefused:
    return JobCancellationRefused(**_job(**{"reason": "the package is on board", **overrides}))


# --- delivery service --------------------------------------------------------------------------


def a_delivery_status(**overrides: Any) -> DeliveryStatusChanged:
    return DeliveryStatusChanged(
        **{
            "delivery_id": DELIVERY,
            "stage": DeliveryStage.SCHEDULED,
            "version": 1,
            "drone_id": DRONE,
            "job_id": JOB,
            **overrides,
        }
    )


def a_trace_request(**overrides: Any) -> DeliveryTraceRequested:
    return DeliveryTraceRequested(**{"delivery_id": DELIVERY, "request_id": "tr-1", **overrides})


def a_trace(**overrides: Any) -> DeliveryTraced:
    entry = TraceEntry(
        id="e-1", time=T0, source="/clients/cli", type=DeliveryRequested.type, summary=None
    )
    return DeliveryTraced(
        **{"delivery_id": DELIVERY, "request_id": "tr-1", "entries": [entry], **overrides}
    )


# --- drones ------------------------------------------------------------------------------------


def a_drone_status(**overrides: Any) -> DroneStatus:
    return DroneStatus(**{"drone_id": DRONE, "link": Link.ONLINE, "session": 1, **overrides})


def a_drone_state(**overrides: Any) -> DroneState:
    return DroneState(
        **{
            "drone_id": DRONE,
            "availability": Availability.IDLE,
            "battery_pct": 95.0,
            "energy_wh": 180.0,
            "position": HOME,
            "home": HOME,
            "max_payload_kg": 2.5,
            **overrides,
        }
    )


def a_telemetry_report(**overrides: Any) -> TelemetryReported:
    return TelemetryReported(
        **{
            "drone_id": DRONE,
            "session": 1,
            "position": HOME,
            "ground_speed_mps": 12.0,
            "climb_rate_mps": 0.0,
            "heading_deg": 90.0,
            "battery_pct": 88.0,
            "phase": "to_pickup",
            "job_id": JOB,
            **overrides,
        }
    )


def a_drone_event(**overrides: Any) -> DroneEvent:
    return DroneEvent(
        **{"drone_id": DRONE, "kind": DroneEventKind.TAKEOFF, "job_id": JOB, **overrides}
    )


# --- operators <-> drones, infrastructure -----------------------------------------------------


def a_drone_command(**overrides: Any) -> DroneCommand:
    return DroneCommand(
        **{"drone_id": DRONE, "command": CommandName.HOLD, "command_id": COMMAND, **overrides}
    )


def a_command_reply(**overrides: Any) -> CommandReply:
    return CommandReply(
        **{
            "drone_id": DRONE,
            "command_id": COMMAND,
            "command": CommandName.HOLD,
            "result": CommandResult.ACCEPTED,
            **overrides,
        }
    )


def a_service_status(**overrides: Any) -> ServiceStatus:
    return ServiceStatus(**{"service": SERVICE, "link": Link.ONLINE, "session": 1, **overrides})


def a_dead_letter(payload: bytes = b"not json", **overrides: Any) -> DeadLetter:
    return DeadLetter(
        **{
            "component": SERVICE,
            "reason": "not_json",
            "detail": "Expecting value: line 1 column 1 (char 0)",
            "topic_name": "murmur/v1/deliveries/del-0001/requested",
            "payload_b64": base64.b64encode(payload).decode(),
            "payload_size": len(payload),
            "payload_sha256": hashlib.sha256(payload).hexdigest(),
            **overrides,
        }
    )


# --- one example of every registered type ------------------------------------------------------

EXAMPLES: dict[type[Event], Callable[[], Event]] = {
    DeliveryRequested: a_delivery_request,
    DeliveryCancellationRequested: a_cancellation_request,
    PackageReady: a_package_ready,
    PackageRejected: a_package_rejection,
    PackageStranded: a_stranded_package,
    JobOffered: a_job_offer,
    JobCancelled: a_job_cancellation,
    DroneAssigned: a_drone_assignment,
    DeliveryUnassignable: an_unassignable_delivery,
    JobAccepted: a_job_acceptance,
    JobRejected: a_job_rejection,
    JobProgressed: a_job_progress,
    JobSucceeded: a_job_success,
    JobFailed: a_job_failure,
    JobCancellationRefused: a_cancellation_refusal,
    DeliveryStatusChanged: a_delivery_status,
    DeliveryTraceRequested: a_trace_request,
    DeliveryTraced: a_trace,
    DroneStatus: a_drone_status,
    DroneState: a_drone_state,
    TelemetryReported: a_telemetry_report,
    DroneEvent: a_drone_event,
    DroneCommand: a_drone_command,
    CommandReply: a_command_reply,
    ServiceStatus: a_service_status,
    DeadLetter: a_dead_letter,
}


def an_example(event_type: type[E]) -> E:
    """A valid event of `event_type`, from its builder above."""
    example = EXAMPLES[event_type]()
    assert isinstance(example, event_type)
    return example

"""The CloudEvents 1.0 envelope (structured JSON mode) that carries every event."""

from datetime import UTC, datetime
from typing import Any, Generic, Literal, Self, TypeVar
from uuid import uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, NonNegativeInt

from contracts.ids import TopicId

DataT = TypeVar("DataT", bound=BaseModel)

# A URI-reference naming the producer: "/cloud/scheduler", "/drones/d-007", "/clients/cli".
Source = str


class Envelope(BaseModel, Generic[DataT]):
    """One CloudEvent. `id` is the idempotency key; the extensions trace one delivery.

    `correlationid` is the delivery id on every event of one delivery, `causationid` the id
    of the event that caused this one, `sequence` a per-producer counter where order matters.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=128)
    source: Source = Field(min_length=1, max_length=256)
    type: str = Field(min_length=1, max_length=128)
    time: AwareDatetime
    subject: TopicId | None = None
    datacontenttype: Literal["application/json"] = "application/json"
    data: DataT
    correlationid: str | None = Field(default=None, max_length=128)
    causationid: str | None = Field(default=None, max_length=128)
    sequence: NonNegativeInt | None = None

    @classmethod
    def new(
        cls,
        data: DataT,
        *,
        source: Source,
        correlationid: str | None = None,
        causationid: str | None = None,
        sequence: int | None = None,
        time: datetime | None = None,
        id: str | None = None,  # noqa: A002 - the CloudEvents attribute name
    ) -> Self:
        """Wrap `data` in a fresh envelope; type and subject come from the event class."""
        return cls(
            id=id or str(uuid4()),
            source=source,
            type=data.type,  # type: ignore[attr-defined]
            time=time or datetime.now(UTC),
            subject=data.subject(),  # type: ignore[attr-defined]
            data=data,
            correlationid=correlationid,
            causationid=causationid,
            sequence=sequence,
        )

    @classmethod
    def caused_by(
        cls,
        cause: "Envelope[Any]",
        data: DataT,
        *,
        source: Source,
        sequence: int | None = None,
        time: datetime | None = None,
    ) -> Self:
        """Wrap `data` as a consequence of `cause`: same correlation, causation = cause.id."""
        return cls.new(
            data,
            source=source,
            correlationid=cause.correlationid,
            causationid=cause.id,
            sequence=sequence,
            time=time,
        )

    def to_json(self) -> bytes:
        """The wire form: compact UTF-8 JSON, `data` serialised as its own class."""
        return self.model_dump_json(exclude_none=True, serialize_as_any=True).encode()

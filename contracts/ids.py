"""Identifier and value types shared by every event."""

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# An id fills one whole MQTT topic level, so it can never contain "/", "+", "#" or "$".
# "." is excluded too: NATS maps "/" to "." in MQTT mode. Case is kept (UUIDs, client ids).
TopicId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")]

Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]
Percent = Annotated[float, Field(ge=0, le=100)]


class Location(BaseModel):
    """A WGS-84 position; altitude is metres above the take-off point."""

    model_config = ConfigDict(frozen=True, extra="ignore", strict=True, allow_inf_nan=False)

    latitude: Latitude
    longitude: Longitude
    altitude_m: Annotated[float, Field(ge=-500, le=10_000)] = 0.0


class PackageSize(StrEnum):
    """One spelling on the wire, lowercase."""

    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"

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


def parse_location(text: str, setting: str, problems: list[str]) -> Location:
    """`LAT,LON` into a Location; a problem naming `setting` if it is not one."""
    try:
        lat_text, lon_text = text.split(",")
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        problems.append(f"{setting}: expected LAT,LON in degrees, got {text!r}")
        return Location(latitude=0.0, longitude=0.0)
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):  # noqa: PLR2004 - degrees
        problems.append(f"{setting}: {text!r} is not a position (latitude ±90, longitude ±180)")
        return Location(latitude=0.0, longitude=0.0)
    return Location(latitude=lat, longitude=lon)

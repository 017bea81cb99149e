"""The Package service's table, in the same database as its bus."""

import time
from dataclasses import dataclass

import sqlite_utils

from cloud.package.rules import PackageStatus
from contracts.ids import Location


@dataclass(frozen=True)
class PackageRecord:
    """One package and where it is."""

    package_id: str
    delivery_id: str
    status: PackageStatus
    pickup: Location
    location: Location | None


class PackageStore:
    """Packages by id, findable by delivery."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self._db = db
        db.executescript(
            """
            CREATE TABLE IF NOT EXISTS packages (
                package_id TEXT PRIMARY KEY, delivery_id TEXT NOT NULL, status TEXT NOT NULL,
                info TEXT NOT NULL, pickup TEXT NOT NULL, location TEXT,
                detail TEXT, updated_at REAL NOT NULL);
            CREATE INDEX IF NOT EXISTS packages_delivery ON packages (delivery_id);
            """
        )

    def get(self, package_id: str) -> PackageRecord | None:
        """The package with this id."""
        return self._one("package_id", package_id)

    def of_delivery(self, delivery_id: str) -> PackageRecord | None:
        """The package of a delivery."""
        return self._one("delivery_id", delivery_id)

    def add(
        self,
        *,
        package_id: str,
        delivery_id: str,
        status: PackageStatus,
        info: str,
        pickup: Location,
        detail: str | None,
    ) -> None:
        """Record a package the first time its delivery is requested."""
        self._db.execute(
            "INSERT INTO packages (package_id, delivery_id, status, info, pickup, detail,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [package_id, delivery_id, status, info, pickup.model_dump_json(), detail, time.time()],
        )

    def set_status(
        self, package_id: str, status: PackageStatus, *, location: Location | None = None
    ) -> None:
        """Move a package on; `location` is kept when given."""
        self._db.execute(
            "UPDATE packages SET status = ?, location = COALESCE(?, location), updated_at = ?"
            " WHERE package_id = ?",
            [status, location.model_dump_json() if location else None, time.time(), package_id],
        )

    def _one(self, column: str, value: str) -> PackageRecord | None:
        row = self._db.execute(
            "SELECT package_id, delivery_id, status, pickup, location FROM packages"  # noqa: S608 - literal column
            f" WHERE {column} = ?",
            [value],
        ).fetchone()
        if row is None:
            return None
        package_id, delivery_id, status, pickup, location = row
        return PackageRecord(
            package_id=package_id,
            delivery_id=delivery_id,
            status=PackageStatus(status),
            pickup=Location.model_validate_json(pickup),
            location=Location.model_validate_json(location) if location else None,
        )

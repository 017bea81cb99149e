import pytest

from cloud.package.rules import PackagePolicy, PackageStatus, duplicate, refusal
from contracts.events import PackageInfo, PackageRejectionReason
from contracts.ids import PackageSize
from tests.builders import a_package

DEFAULT = PackagePolicy()
R = PackageRejectionReason


def _reason(package: PackageInfo, policy: PackagePolicy = DEFAULT) -> PackageRejectionReason | None:
    refused = refusal(package, policy)
    return None if refused is None else refused[0]


def test_a_package_within_the_limits_is_accepted() -> None:
    assert refusal(a_package(), DEFAULT) is None


@pytest.mark.parametrize("size", [PackageSize.SMALL, PackageSize.MEDIUM])
def test_a_package_of_exactly_the_maximum_weight_is_accepted(size: PackageSize) -> None:
    assert refusal(a_package(size=size, weight_kg=2.5, tag="fragile"), DEFAULT) is None


def test_an_overweight_package_is_refused_naming_both_weights() -> None:
    refused = refusal(a_package(weight_kg=3.0), DEFAULT)

    assert refused is not None
    reason, detail = refused
    assert reason is R.OVERWEIGHT
    assert "3 kg" in detail
    assert "2.5 kg" in detail


def test_a_large_package_is_too_large_for_the_default_policy() -> None:
    refused = refusal(a_package(size=PackageSize.LARGE), DEFAULT)

    assert refused is not None
    reason, detail = refused
    assert reason is R.TOO_LARGE
    assert "large" in detail
    assert "medium, small" in detail


@pytest.mark.parametrize("tag", ["hazmat", " HAZMAT ", "Lithium-Bulk", "live-animal\n"])
def test_a_refused_tag_is_matched_ignoring_case_and_surrounding_whitespace(tag: str) -> None:
    refused = refusal(a_package(tag=tag), DEFAULT)

    assert refused is not None
    reason, detail = refused
    assert reason is R.TAG_REFUSED
    assert repr(tag) in detail


@pytest.mark.parametrize("tag", [None, "fragile", "hazmat-free", ""])
def test_a_tag_not_on_the_refused_list_is_carried(tag: str | None) -> None:
    assert refusal(a_package(tag=tag), DEFAULT) is None


def test_the_first_failing_rule_wins() -> None:
    assert _reason(a_package(weight_kg=4.0, tag=" HAZMAT ")) is R.OVERWEIGHT
    assert _reason(a_package(weight_kg=4.0, size=PackageSize.LARGE, tag="hazmat")) is R.OVERWEIGHT
    assert _reason(a_package(size=PackageSize.LARGE, tag="hazmat")) is R.TOO_LARGE


def test_a_policy_carrying_large_and_heavier_packages_accepts_them() -> None:
    big_and_heavy = a_package(size=PackageSize.LARGE, weight_kg=4.0)
    roomy = PackagePolicy(max_weight_kg=5.0, sizes=frozenset(PackageSize))

    assert _reason(big_and_heavy) is R.OVERWEIGHT
    assert _reason(a_package(size=PackageSize.LARGE, weight_kg=2.0)) is R.TOO_LARGE
    assert _reason(big_and_heavy, roomy) is None


def test_a_stricter_policy_refuses_what_the_default_accepts() -> None:
    package = a_package(weight_kg=1.2, size=PackageSize.MEDIUM)
    light_only = PackagePolicy(max_weight_kg=1.0)
    small_only = PackagePolicy(sizes=frozenset({PackageSize.SMALL}))

    assert refusal(package, DEFAULT) is None
    assert refusal(package, light_only) == (
        R.OVERWEIGHT,
        "1.2 kg is over the fleet's maximum of 1 kg",
    )
    assert refusal(package, small_only) == (R.TOO_LARGE, "size medium; carried: small")


def test_a_policy_decides_which_tags_are_refused() -> None:
    no_tags_refused = PackagePolicy(refused_tags=frozenset())
    fragile_refused = PackagePolicy(refused_tags=frozenset({"fragile"}))

    assert refusal(a_package(tag="hazmat"), no_tags_refused) is None
    assert refusal(a_package(tag="hazmat"), fragile_refused) is None
    assert refusal(a_package(tag=" Fragile"), fragile_refused) == (
        R.TAG_REFUSED,
        "tag ' Fragile' is not carried",
    )


def test_the_default_policy_fits_the_simulated_airframe() -> None:
    assert DEFAULT.max_weight_kg == 2.5
    assert DEFAULT.sizes == {PackageSize.SMALL, PackageSize.MEDIUM}
    assert DEFAULT.refused_tags == {"hazmat", "lithium-bulk", "live-animal"}


def test_a_duplicate_package_is_refused_naming_the_package_and_its_delivery() -> None:
    reason, detail = duplicate("pkg-0001", "del-0042")

    assert reason is R.DUPLICATE_PACKAGE
    assert "pkg-0001" in detail
    assert "del-0042" in detail


def test_package_statuses_have_their_wire_spelling() -> None:
    assert [s.value for s in PackageStatus] == [
        "ready",
        "rejected",
        "in_transit",
        "delivered",
        "stranded",
        "released",
    ]

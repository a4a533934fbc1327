"""DynamoDB's item size limit as AWS applies it to an update, in the local stack.

moto 5.2.5 checks an item's size each time one of its attributes is set: the size of
every attribute it has plus the new value's. Setting an attribute it already has (an
``UpdateItem`` that replaces it) so counts the old value and the new one, so moto refuses
to replace a 210 KB attribute with another 210 KB, where AWS counts the item as it will
be (the old value gone) and takes it. The live stream record is such an item (its
playlist state, replaced on every segment): locally it failed with ValidationException
at half the size AWS allows.

Here the attribute being set is counted once, by its new value, against moto's own
limit (405,000 bytes, a little under AWS's 400 KB of 1,024). Like the other patches, it
checks moto's version and the source of what it replaces first, and the engine refuses
to start on a moto it does not know.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workflow.local.moto_pins import check_pinned, once

# sha256 (first 16 hex digits) of the source of each moto function the patch replaces.
EXPECTED_SOURCES = {"LimitedSizeDict.__setitem__": "d979580fdbe14f79"}
# moto's limit on an item's size.
MOTO_ITEM_BYTES = 405_000

# moto's own functions, once the patch has replaced them.
_replaced: dict[str, Callable[..., Any]] = {}


def _moto_sources() -> dict[str, Callable[..., Any]]:
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    return _replaced or {"LimitedSizeDict.__setitem__": LimitedSizeDict.__setitem__}


def check() -> None:
    """Raise ``MotoChangedError`` unless moto is the version and code this patch was read on."""
    check_pinned(
        "the item size patch (workflow/local/dynamodb_size.py)", _moto_sources(), EXPECTED_SOURCES
    )


@once
def install() -> None:
    """Patch moto (once per process) so an attribute set again counts once."""
    check()
    from moto.dynamodb.models.dynamo_type import LimitedSizeDict

    _replaced["LimitedSizeDict.__setitem__"] = LimitedSizeDict.__setitem__
    LimitedSizeDict.__setitem__ = _set_counted_once  # type: ignore[method-assign]


def _size(part: Any) -> int:
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.utilities import bytesize

    return part.size() if type(part) is DynamoType else bytesize(str(part))


def _set_counted_once(attrs: dict[str, Any], key: str, value: Any) -> None:
    """moto's check, but the attribute being set is counted by its new value only."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge

    kept = sum(_size(k) + _size(v) for k, v in attrs.items() if k != key)
    if kept + _size(key) + _size(value) > MOTO_ITEM_BYTES:
        raise ItemSizeTooLarge
    dict.__setitem__(attrs, key, value)

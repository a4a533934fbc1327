"""DynamoDB transactions in the local stack at the cost of the items they write.

moto 5.2.5's ``TransactWriteItems`` deep-copies every table it names before it starts,
and puts those copies back in place of the tables when it is cancelled. The live table
holds every arrival of every stream: counting one segment as published (a transaction of
its arrival and its stream record, ``StreamTable.count_published``) took 1.4 s with 10,000
arrivals stored, and grew with them (LivePublish's 30 s ran out within a day of 1 s
segments); and a cancelled one (a duplicate's count) put back the whole table as it was,
losing whatever the stack's other functions wrote to it meanwhile.

Here only the items the transaction names are copied, and only they are put back, and
transactions run one at a time: moto serves requests on several threads and runs a
transaction's checks and writes unlocked, so two counts of one segment at once (an event
delivered twice) could both pass their condition, or one be put back over the other's
committed write, where DynamoDB serializes them. Like
the other patches, it checks moto's version and the source of what it replaces first,
and the engine refuses to start on a moto it does not know.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

from workflow.local.moto_pins import check_pinned, once

# sha256 (first 16 hex digits) of the source of each moto function the patch replaces.
EXPECTED_SOURCES = {"DynamoDBBackend.transact_write_items": "81db2cb7d94e39c9"}

# One transaction at a time, from its copies to its put-back.
_serial = threading.Lock()
# moto's own functions, once the patch has replaced them.
_replaced: dict[str, Callable[..., Any]] = {}


def _moto_sources() -> dict[str, Callable[..., Any]]:
    from moto.dynamodb.models import DynamoDBBackend

    return _replaced or {
        "DynamoDBBackend.transact_write_items": DynamoDBBackend.transact_write_items
    }


def check() -> None:
    """Raise ``MotoChangedError`` unless moto is the version and code this patch was read on."""
    check_pinned(
        "the transactions patch (workflow/local/dynamodb_transactions.py)",
        _moto_sources(),
        EXPECTED_SOURCES,
    )


@once
def install() -> None:
    """Patch moto (once per process) so a transaction copies only the items it writes."""
    check()
    from moto.dynamodb.models import DynamoDBBackend

    _replaced["DynamoDBBackend.transact_write_items"] = DynamoDBBackend.transact_write_items
    DynamoDBBackend.transact_write_items = _transact_write_items  # type: ignore[method-assign,assignment]


def _transact_write_items(backend: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto's ``transact_write_items``, its items kept and put back rather than its tables."""
    from moto.dynamodb.exceptions import TooManyTransactionsException

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    with _serial:
        kept = [_keep(backend, item) for item in transact_items]
        try:
            _replaced["DynamoDBBackend.transact_write_items"](_Untabled(backend), transact_items)
        except Exception:
            # (Cancelled: a condition failed, or an action was refused.)
            for put_back in reversed(kept):
                if put_back is not None:
                    put_back()
            raise


class _Untabled:
    """The backend as moto's ``transact_write_items`` sees it: it copies (and puts back)
    each table it finds in ``tables``, and finds none; it reaches the tables through the
    backend's own methods, which find them all."""

    def __init__(self, backend: Any) -> None:
        self._backend = backend
        self.tables: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)


def _keep(backend: Any, item: dict[str, Any]) -> Callable[[], None] | None:
    """What puts the item a transaction's action names back as it is now (None: no such
    table, the action fails by itself)."""
    from moto.dynamodb.exceptions import ResourceNotFoundException

    kind, action = next(iter(item.items()))
    try:
        table = backend.get_table(action["TableName"])
    except (KeyError, ResourceNotFoundException):
        return None
    if kind == "Put":
        attrs = action["Item"]
        keys = {table.hash_key_attr: attrs[table.hash_key_attr]}
        if table.range_key_attr is not None:
            keys[table.range_key_attr] = attrs[table.range_key_attr]
    else:
        keys = action["Key"]
    hash_key, range_key = backend.get_keys_value(table, keys)
    old = copy.deepcopy(table.get_item(hash_key, range_key))

    def put_back() -> None:
        table.delete_item(hash_key, range_key)
        if old is None:
            return
        if range_key:
            table.items[hash_key][range_key] = old
        else:
            table.items[hash_key] = old

    return put_back

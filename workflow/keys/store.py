"""Content keys: one random 128-bit key per asset (or live stream), made once, kept
only wrapped by KMS in a private DynamoDB table.

The key is a KMS data key bound to its asset by the encryption context, so a wrapped
key copied to another asset's item does not unwrap. The item is written with a
condition: a retried Plan, or a duplicate event's, finds the key already made and uses
that one, so every segment of an asset decrypts with the same key.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from workflow.errors import ConfigurationError, VidflowError
from workflow.runtime import Clients
from workflow.settings import Settings

KEY_BYTES = 16
# The encryption context every wrapped key is bound to its asset with.
CONTEXT = "vidflow:asset"


class ContentKeyMissingError(VidflowError):
    """An encrypted job's content key is not in the key store (deleted, or never made)."""


@dataclass(frozen=True)
class ContentKey:
    """An asset's key in clear: only ever in a function's memory."""

    asset: str
    key_id: str  # a UUID, hex: what a manifest or a DRM system may name the key by
    key: bytes = b""
    # A live stream's segments per key period; its key itself is then never handed out.
    rotation: int = 0

    def __repr__(self) -> str:
        # The key never reaches a log through a repr.
        return f"ContentKey(asset={self.asset!r}, key_id={self.key_id!r})"


@dataclass(frozen=True)
class KeyStore:
    """The stack's key table and the KMS key that wraps every content key."""

    table: str
    kms_key: str
    dynamodb: Any
    kms: Any

    def __post_init__(self) -> None:
        if not self.table or not self.kms_key:
            raise ConfigurationError("encryption needs KEYS_TABLE and CONTENT_KEY_KMS_KEY set")

    def make_once(self, asset: str, rotation: int = 0) -> ContentKey:
        """The asset's key: a new one, or the one an earlier attempt made. With
        ``rotation``, players get only its period keys (``segments.period_key``)."""
        made = self.kms.generate_data_key(
            KeyId=self.kms_key, NumberOfBytes=KEY_BYTES, EncryptionContext={CONTEXT: asset}
        )
        key_id = uuid.uuid4().hex
        try:
            self.dynamodb.put_item(
                TableName=self.table,
                Item={
                    "asset": {"S": asset},
                    "key_id": {"S": key_id},
                    "wrapped": {"B": made["CiphertextBlob"]},
                    "rotation": {"N": str(rotation)},
                },
                ConditionExpression="attribute_not_exists(asset)",
            )
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return self.get(asset)
        return ContentKey(asset, key_id, made["Plaintext"], rotation)

    def forget(self, asset: str) -> None:
        """Delete the asset's key (none is fine): only for an asset nothing was published
        of, such as a failed job's, whose item would otherwise stay for good."""
        self.dynamodb.delete_item(TableName=self.table, Key={"asset": {"S": asset}})

    def get(self, asset: str) -> ContentKey:
        """The asset's key, unwrapped; ``ContentKeyMissingError`` if it has none."""
        item = self.dynamodb.get_item(
            TableName=self.table, Key={"asset": {"S": asset}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            raise ContentKeyMissingError(f"no content key for {asset}")
        key = self.kms.decrypt(
            CiphertextBlob=item["wrapped"]["B"], EncryptionContext={CONTEXT: asset}
        )["Plaintext"]
        rotation = int(item.get("rotation", {"N": "0"})["N"])
        return ContentKey(asset, item["key_id"]["S"], key, rotation)

    @classmethod
    def of(cls, settings: Settings, clients: Clients) -> KeyStore:
        """The stack's key store, as a function's settings and clients name it."""
        return cls(settings.keys_table, settings.content_key_kms_key, clients.dynamodb, clients.kms)

    def exists(self, asset: str) -> bool:
        """Whether the asset is protected (has a key), without unwrapping it."""
        return self.key_id(asset) is not None

    def key_id(self, asset: str) -> str | None:
        """The id of the asset's key (no KMS call, nothing unwrapped); None if it has none."""
        item = self.dynamodb.get_item(
            TableName=self.table,
            Key={"asset": {"S": asset}},
            ProjectionExpression="key_id",
            ConsistentRead=True,
        ).get("Item")
        return None if item is None else str(item["key_id"]["S"])

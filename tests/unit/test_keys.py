"""Protected playback's parts on their own: playback tokens, segment encryption, the key
store (on moto's KMS and DynamoDB), the key service's answers and the origin's gate."""

from __future__ import annotations

import base64
import json
import logging
import string
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.exceptions
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asym_padding
from moto import mock_aws

from tests import iam_policy
from workflow.errors import ConfigurationError
from workflow.formats import hls
from workflow.keys import cdn, tokens
from workflow.keys import segments as aes128
from workflow.keys.service import (
    PlaybackGate,
    PlaybackSecret,
    answer,
    key_service_uri,
    last_admitted,
)
from workflow.keys.store import ContentKeyMissingError, KeyStore
from workflow.live.store import StreamRecord
from workflow.runtime import Clients
from workflow.settings import Settings
from workflow.vod.failure import record_failure

SECRET = b"s" * 48
NOW = 1_800_000_000.0


def token(asset: str = "game-1", expires: float = NOW + 60, viewer: str | None = None) -> str:
    return tokens.sign(SECRET, tokens.Grant(asset, int(expires), viewer))


def test_a_token_grants_its_asset_until_it_expires() -> None:
    grant = tokens.verify(SECRET, token(viewer="fan@club"), "game-1", NOW)
    assert grant == tokens.Grant("game-1", int(NOW + 60), "fan@club")
    assert tokens.verify(SECRET, token(), "game-1", NOW + 59).viewer is None


@pytest.mark.parametrize(
    ("why", "given", "reason"),
    [
        ("missing", None, "no token"),
        ("empty", "", "no token"),
        ("expired", token(expires=NOW), "expired"),
        ("another asset", token(asset="game-2"), "another asset"),
        (
            "another secret",
            tokens.sign(b"t" * 48, tokens.Grant("game-1", int(NOW + 60))),
            "signature",
        ),
        ("not ours", "eyJhbGciOiJIUzI1NiJ9.e30.abc", "not a vidflow token"),
        ("too long", "v1." + "a" * 5000 + ".b", "too long"),
        ("bad base64", "v1.abc.%%%", "malformed signature"),
    ],
)
def test_a_token_that_does_not_grant_the_asset_now_is_refused(
    why: str, given: str | None, reason: str
) -> None:
    with pytest.raises(tokens.TokenRefused, match=reason):
        tokens.verify(SECRET, given, "game-1", NOW)


def test_claims_cannot_be_changed_under_a_signature() -> None:
    version, claims, signature = token().split(".")
    data = json.loads(base64.urlsafe_b64decode(claims + "=="))
    for changed in ({**data, "e": data["e"] + 3600}, {**data, "a": "game-2"}):
        body = base64.urlsafe_b64encode(json.dumps(changed).encode()).rstrip(b"=").decode()
        with pytest.raises(tokens.TokenRefused, match="bad signature"):
            tokens.verify(SECRET, f"{version}.{body}.{signature}", changed["a"], NOW)


def test_a_token_has_one_spelling() -> None:
    # GIVEN a token, and its signature respelled: the same 32 bytes with the unused bits
    # of its last base64url character set
    version, claims, signature = token().split(".")
    alphabet = string.ascii_letters + string.digits + "-_"
    same = [
        f"{signature[:-1]}{c}"
        for c in alphabet
        if c != signature[-1]
        and base64.urlsafe_b64decode(f"{signature[:-1]}{c}=")
        == base64.urlsafe_b64decode(f"{signature}=")
    ]
    assert len(same) == 3
    # THEN only the spelling it was signed with is taken (a deny-list or a cache keyed by
    # a token's text would miss the others)
    assert tokens.verify(SECRET, token(), "game-1", NOW).asset == "game-1"
    for respelled in same:
        with pytest.raises(tokens.TokenRefused, match="malformed signature"):
            tokens.verify(SECRET, f"{version}.{claims}.{respelled}", "game-1", NOW)


def test_signing_refuses_a_short_secret_and_odd_names() -> None:
    with pytest.raises(ConfigurationError, match="is 5 bytes; it must be at least 32"):
        tokens.sign(b"short", tokens.Grant("game-1", 1))
    for asset in ("", "../etc", "a b", "x" * 300, "live.a/b"):
        with pytest.raises(ValueError, match="asset"):
            tokens.sign(SECRET, tokens.Grant(asset, 1))
    with pytest.raises(ValueError, match="viewer"):
        tokens.sign(SECRET, tokens.Grant("game-1", 1, "a viewer\nwith a newline"))


def test_a_segment_is_aes_128_cbc_with_padding_under_its_own_iv() -> None:
    key, data = bytes(range(16)), b"\x47" + bytes(187) * 3
    iv = aes128.segment_iv("720p/seg_00003.ts")
    sealed = aes128.encrypt(key, iv, data)
    # PKCS#7 always pads: a whole block more where the data fills its blocks
    assert len(sealed) % 16 == 0 and len(data) < len(sealed) <= len(data) + 16
    assert data[:16] not in sealed
    assert aes128.decrypt(key, iv, sealed) == data
    assert aes128.segment_iv("720p/seg_00004.ts") != iv
    assert aes128.segment_iv("360p/seg_00003.ts") != iv
    assert aes128.segment_iv("720p/seg_00003.ts") == iv  # a retried chunk writes the same
    line = aes128.key_line("https://k.example/keys/a", iv)
    assert line == f'#EXT-X-KEY:METHOD=AES-128,URI="https://k.example/keys/a",IV=0x{iv.hex()}'


def test_a_playlist_lists_each_segment_after_its_key() -> None:
    entries = [
        hls.SegmentEntry(f"seg_{n}.ts", 4.0, key=aes128.key_line("k", bytes([n]) * 16))
        for n in range(2)
    ]
    lines = hls.media_playlist(entries).splitlines()
    first = lines.index(entries[0].key)  # type: ignore[arg-type]
    assert lines[first + 1 : first + 5] == [
        "#EXTINF:4.000000,",
        "seg_0.ts",
        entries[1].key,
        "#EXTINF:4.000000,",
    ]


@pytest.fixture
def store() -> Iterator[KeyStore]:
    with mock_aws():
        options = {"region_name": "us-east-1", "aws_access_key_id": "u"}
        options["aws_secret_access_key"] = "u"
        dynamodb, kms = boto3.client("dynamodb", **options), boto3.client("kms", **options)
        dynamodb.create_table(
            TableName="keys",
            AttributeDefinitions=[{"AttributeName": "asset", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "asset", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        key_id = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/content", TargetKeyId=key_id)
        yield KeyStore("keys", "alias/content", dynamodb, kms)


def test_an_asset_gets_one_key_however_many_times_it_is_asked(store: KeyStore) -> None:
    # GIVEN eight Plans of one asset racing (retries, a duplicate event)
    made: list[Any] = []
    threads = [threading.Thread(target=lambda: made.append(store.make_once("game-1")))
               for _ in range(8)]  # fmt: skip
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # THEN they all hold the same key, the one the store gives back
    kept = store.get("game-1")
    assert {(k.key_id, k.key) for k in made} == {(kept.key_id, kept.key)}
    assert len(kept.key) == 16 and kept.key != store.make_once("game-2").key
    assert store.exists("game-1") and not store.exists("game-3")
    # AND the key is stored only wrapped, and never shows in a repr
    item = store.dynamodb.get_item(TableName="keys", Key={"asset": {"S": "game-1"}})["Item"]
    assert kept.key not in item["wrapped"]["B"] and kept.key.hex() not in repr(kept)


def test_a_failed_job_leaves_no_content_key(store: KeyStore) -> None:
    # GIVEN a protected job whose Plan made its key, and an output bucket
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="out")
    store.make_once("clip-0123456789abcdef")
    store.make_once("other-0123456789abcdef")
    held = boto3.client("dynamodb", region_name="us-east-1")
    iam_policy.enforce(held, "RecordFailureFunction", {"keys": "KeysTable", "out": "OutputBucket"})
    settings = Settings(output_bucket="out", keys_table="keys", content_key_kms_key="alias/content")
    # WHEN the job fails before anything was published
    failed = {"job_id": "clip-0123456789abcdef", "error": {"Error": "TranscodeError"}}
    record_failure(failed, settings, Clients(s3=s3, dynamodb=held, kms=store.kms))
    # THEN its key is gone (the item would stay for good), and no other asset's
    assert store.key_id("clip-0123456789abcdef") is None
    assert store.key_id("other-0123456789abcdef") is not None


def test_a_wrapped_key_is_bound_to_its_asset(store: KeyStore) -> None:
    store.make_once("game-1")
    item = store.dynamodb.get_item(TableName="keys", Key={"asset": {"S": "game-1"}})["Item"]
    store.dynamodb.put_item(TableName="keys", Item={**item, "asset": {"S": "game-2"}})
    with pytest.raises(store.kms.exceptions.InvalidCiphertextException):
        store.get("game-2")
    with pytest.raises(ContentKeyMissingError):
        store.get("never-made")


def test_encryption_needs_its_store_and_a_known_method() -> None:
    with pytest.raises(ConfigurationError, match="KEYS_TABLE"):
        KeyStore("", "alias/x", None, None)
    with pytest.raises(ConfigurationError, match="ENCRYPTION"):
        Settings.from_env({"ENCRYPTION": "widevine"})
    assert Settings.from_env({"ENCRYPTION": "aes-128"}).encryption == "aes-128"
    cbcs = {"ENCRYPTION": "cbcs", "PACKAGING": "cmaf"}
    assert Settings.from_env(cbcs).encryption == "cbcs"
    # AND a method that cannot protect the stack's packaging is refused up front (every
    # upload without options of its own would fail)
    for wrong in ({"ENCRYPTION": "cbcs"}, {"ENCRYPTION": "aes-128", "PACKAGING": "cmaf"}):
        with pytest.raises(ConfigurationError, match="every upload without options would fail"):
            Settings.from_env(wrong)


class FixedSecret(PlaybackSecret):
    def __init__(self) -> None:
        super().__init__(secrets=None, name="unused")

    def get(self) -> bytes:
        return SECRET


def request(path: str, method: str = "GET", **parts: Any) -> dict[str, Any]:
    return {"rawPath": path, "requestContext": {"http": {"method": method}}, **parts}


def test_the_key_service_answers_a_valid_token_only(
    store: KeyStore, caplog: pytest.LogCaptureFixture
) -> None:
    key = store.make_once("game-1").key
    secret, now = FixedSecret(), NOW
    ok = answer(
        request("/keys/game-1", queryStringParameters={"token": token()}), store, secret, now
    )
    assert ok["statusCode"] == 200 and ok["isBase64Encoded"]
    assert base64.b64decode(ok["body"]) == key and ok["headers"]["Cache-Control"].startswith(
        "private"
    )
    bearer = request("/keys/game-1", headers={"Authorization": f"Bearer {token()}"})
    assert answer(bearer, store, secret, now)["statusCode"] == 200
    # Refusals are bare, and their log names the reason and the asset, never the token
    caplog.set_level(logging.INFO, logger="vidflow.keys")
    expired = token(expires=NOW - 1)
    for asked in (
        request("/keys/game-1"),
        request("/keys/game-1", queryStringParameters={"token": expired}),
        request("/keys/game-1", queryStringParameters={"token": token(asset="game-2")}),
        request("/keys/game-1", headers={"authorization": f"Basic {token()}"}),
    ):
        assert answer(asked, store, secret, now) == answer(
            request("/keys/game-1"), store, secret, now
        )
        assert answer(asked, store, secret, now)["statusCode"] == 403
    assert "expired (asset game-1)" in caplog.text and expired not in caplog.text
    # Anything but a GET of a key's path, and an asset with no key
    assert answer(request("/keys/game-1", "PUT"), store, secret, now)["statusCode"] == 405
    assert answer(request("/keys/../etc/passwd"), store, secret, now)["statusCode"] == 404
    lost = request("/keys/game-9", queryStringParameters={"token": token(asset="game-9")})
    assert answer(lost, store, secret, now)["statusCode"] == 404
    assert (
        key_service_uri("https://x.lambda-url.on.aws/", "game-1")
        == "https://x.lambda-url.on.aws/keys/game-1"
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_the_key_service_answers_a_clear_key_license_for_the_asset_s_key_only(
    store: KeyStore,
) -> None:
    made = store.make_once("game-1")
    kid = b64url(bytes.fromhex(made.key_id))
    secret = FixedSecret()

    def post(body: bytes, given: str = token(), encoded: bool = True) -> dict[str, Any]:
        asked = request(
            "/keys/game-1",
            "POST",
            queryStringParameters={"token": given},
            body=base64.b64encode(body).decode() if encoded else body.decode(),
            isBase64Encoded=encoded,
        )
        return answer(asked, store, secret, NOW)

    license_request = json.dumps({"kids": [kid, b64url(b"x" * 16)], "type": "temporary"})
    # The EME ClearKey request, as a player's CDM writes it, base64 or as text
    for encoded in (True, False):
        granted = post(license_request.encode(), encoded=encoded)
        assert granted["statusCode"] == 200
        assert granted["headers"]["Content-Type"] == "application/json"
        assert json.loads(granted["body"]) == {
            "keys": [{"kty": "oct", "kid": kid, "k": b64url(made.key)}],
            "type": "temporary",
        }
    # A request for other keys only, one that is not a license request, a bad token
    other = json.dumps({"kids": [b64url(b"y" * 16)]}).encode()
    assert post(other)["statusCode"] == 404
    nested = b'{"kids": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"  # Python's JSON recurses
    for junk in (b"", b"{", b'{"kids": 7}', b'{"keys": []}', b'{"kids": ["@@"]}', nested):
        assert post(junk)["statusCode"] == 400, junk
    assert post(license_request.encode(), token(asset="game-2"))["statusCode"] == 403


def test_a_token_cannot_stock_up_the_keys_of_periods_to_come(
    store: KeyStore, caplog: pytest.LogCaptureFixture
) -> None:
    # A viewer whose token expires in a minute must not fetch, in that minute, the keys of
    # every period the stream will have: they would open its segments for good after
    key = store.make_once("live.cam", rotation=2).key
    secret, grant = FixedSecret(), {"token": token(asset="live.cam")}
    admitted: dict[str, int] = {}

    def fetch(period: int) -> dict[str, Any]:
        asked = request(f"/keys/live.cam/{period}", queryStringParameters=grant)
        return answer(asked, store, secret, NOW, admitted.get)

    assert fetch(0)["statusCode"] == 404  # nothing admitted yet: no period has begun
    admitted["cam"] = 5  # segments 0-5: periods 0, 1 and 2
    for period in (0, 1, 2):
        served = fetch(period)
        assert served["statusCode"] == 200
        assert base64.b64decode(served["body"]) == aes128.period_key(key, period)
    with caplog.at_level(logging.WARNING, logger="vidflow.keys"):
        assert [fetch(p)["statusCode"] for p in (3, 50, 999_999_999)] == [404] * 3
    assert "period 3 not begun (asset live.cam)" in caplog.text
    # Without a way to tell how far the stream has got, no period key at all
    asked = request("/keys/live.cam/0", queryStringParameters=grant)
    assert answer(asked, store, secret, NOW)["statusCode"] == 404


def test_how_far_a_stream_has_got_is_its_highest_admitted_or_last_ended_segment() -> None:
    def record(admitted: int | None, ending: dict[str, Any] | None) -> StreamRecord:
        return StreamRecord(None, None, ending, 0, False, admitted=admitted)

    class Table:
        records = {"a": record(7, None), "b": record(None, {"last_sequence": 9}),
                   "c": record(12, {"last_sequence": 11}), "d": record(None, None)}  # fmt: skip

        def get(self, stream: str) -> StreamRecord | None:
            return self.records.get(stream)

    last = last_admitted(Table())  # type: ignore[arg-type]
    assert [last(s) for s in "abcde"] == [7, 9, 12, None, None]


def test_a_rotating_streams_period_keys_are_its_own_and_served_to_its_token_only(
    store: KeyStore,
) -> None:
    key = store.make_once("live.cam", rotation=2).key
    periods = [aes128.period_key(key, n) for n in range(4)]
    # Each period has a key of its own, none of them the stream's, the same every time
    assert len({key, *periods}) == 5 and all(len(k) == 16 for k in periods)
    assert aes128.period_key(key, 2) == periods[2]
    # The key service hands a period's key to a token for the stream, and to nobody else
    secret, grant = FixedSecret(), {"token": token(asset="live.cam")}
    begun = {"cam": 5}.get  # segment 5 admitted: periods 0-2 have begun
    ok = answer(request("/keys/live.cam/2", queryStringParameters=grant), store, secret, NOW, begun)
    assert ok["statusCode"] == 200 and base64.b64decode(ok["body"]) == periods[2]
    other = {"token": token(asset="live.dog")}
    assert (
        answer(request("/keys/live.cam/2", queryStringParameters=other), store, secret, NOW, begun)[
            "statusCode"
        ]
        == 403
    )
    # AND never the stream's own key (it opens every period), nor periods of an asset without
    store.make_once("game-1")
    lost = ("/keys/live.cam", "/keys/live.cam/02", "/keys/live.cam/-1", "/keys/live.cam/x",
            "/keys/live.cam/")  # fmt: skip
    for path in lost:
        assert (
            answer(request(path, queryStringParameters=grant), store, secret, NOW, begun)[
                "statusCode"
            ]
            == 404
        ), path
    vod = request("/keys/game-1/0", queryStringParameters={"token": token()})
    assert answer(vod, store, secret, NOW, {"game-1": 9}.get)["statusCode"] == 404
    assert key_service_uri("https://k/", "live.cam", 7) == "https://k/keys/live.cam/7"
    # A stack without the key service's URL names the setting, rather than list a key
    # nobody can fetch
    with pytest.raises(ConfigurationError, match="KEY_SERVICE_URL"):
        key_service_uri("", "live.cam")


def test_the_origin_gate_guards_protected_assets_only(store: KeyStore) -> None:
    store.make_once("game-1")
    gate = PlaybackGate(store, FixedSecret(), clock=lambda: NOW)
    for key in ("outputs/game-1/master.m3u8", "outputs/game-1/720p/seg_00000.ts",
                "outputs/game-1/manifest.json", "outputs/game-1/images/poster.jpg"):  # fmt: skip
        assert not gate.allows(key, None)
        assert not gate.allows(key, token(asset="game-2"))
        assert not gate.allows(key, token(expires=NOW))
        assert gate.allows(key, token())
    assert gate.allows("outputs/game-2/master.m3u8", None)  # a clear asset
    assert gate.allows("live/stream/live.m3u8", None)  # a clear stream
    # An encrypted stream is guarded under its own asset name, apart from any job's
    store.make_once("live.cam")
    for key in ("live/cam/live.m3u8", "live/cam/360p/seg_00000.ts", "live/cam/master.m3u8"):
        assert not gate.allows(key, None)
        assert not gate.allows(key, token(asset="live-cam"))
        assert gate.allows(key, token(asset="live.cam"))


def test_the_secret_is_read_again_after_a_while() -> None:
    reads: list[str] = []

    class Secrets:
        def get_secret_value(self, SecretId: str) -> dict[str, str]:
            reads.append(SecretId)
            return {"SecretString": f"value-{len(reads)}".ljust(64, "x")}

    clock = [0.0]
    secret = PlaybackSecret(Secrets(), "stack-playback-token", clock=lambda: clock[0])
    assert secret.get() == secret.get() == b"value-1".ljust(64, b"x")
    clock[0] = 301.0
    assert secret.get() == b"value-2".ljust(64, b"x") and reads == ["stack-playback-token"] * 2


def test_a_secret_that_cannot_be_read_again_keeps_the_value_read_last_a_while(
    store: KeyStore,
) -> None:
    reads: list[float] = []
    down = [False]

    class Secrets:
        def get_secret_value(self, SecretId: str) -> dict[str, str]:
            reads.append(clock[0])
            if down[0]:
                error: Any = {"Error": {"Code": "ThrottlingException", "Message": "slow down"}}
                raise botocore.exceptions.ClientError(error, "GetSecretValue")
            return {"SecretString": SECRET.decode()}

    clock = [0.0]
    store.make_once("game-1")
    secret = PlaybackSecret(Secrets(), "stack-playback-token", clock=lambda: clock[0])
    asked = request("/keys/game-1", queryStringParameters={"token": token()})
    assert answer(asked, store, secret, NOW)["statusCode"] == 200
    # GIVEN Secrets Manager refusing reads once the value read is due to be read again
    down[0] = True
    # THEN players are answered with the value read last, read again every 30 s at most
    for at in (301.0, 302.0, 331.5, 3600.0):
        clock[0] = at
        assert answer(asked, store, secret, NOW)["statusCode"] == 200
    assert reads == [0.0, 301.0, 331.5, 3600.0]
    # AND past an hour without a read the key service is unavailable (503, the stack's
    # fault in its log), never a 502 of an unhandled error
    for at in (3601.0, 3602.0):
        clock[0] = at
        assert answer(asked, store, secret, NOW)["statusCode"] == 503
    # AND once it answers again, so does the key service
    down[0] = False
    clock[0] = 3603.0
    assert answer(asked, store, secret, NOW)["statusCode"] == 200


def test_a_secret_put_too_short_is_the_stacks_named_fault_not_the_players(
    store: KeyStore, caplog: pytest.LogCaptureFixture
) -> None:
    values = ["new-rotated-value-2026", SECRET.decode()]

    class Secrets:
        def get_secret_value(self, SecretId: str) -> dict[str, str]:
            return {"SecretString": values[0]}

    # GIVEN a secret rotated by hand to a value too short to sign with
    store.make_once("game-1")
    secret = PlaybackSecret(Secrets(), "stack-playback-token")
    caplog.set_level(logging.INFO, logger="vidflow.keys")
    # THEN the key service answers 503 and logs why; the origin gate lets nothing by
    asked = request("/keys/game-1", queryStringParameters={"token": token()})
    assert answer(asked, store, secret, NOW)["statusCode"] == 503
    assert "stack-playback-token is 22 bytes; it must be at least 32" in caplog.text
    gate = PlaybackGate(store, secret, clock=lambda: NOW)
    assert not gate.allows("outputs/game-1/master.m3u8", token())
    # AND once it is mended, the next request reads it again and is answered
    values.pop(0)
    assert answer(asked, store, secret, NOW)["statusCode"] == 200
    assert gate.allows("outputs/game-1/master.m3u8", token())


def _cloudfront_b64(text: str) -> bytes:
    return base64.b64decode(text.replace("-", "+").replace("_", "=").replace("~", "/"))


def test_a_cdn_signature_covers_the_assets_folder_until_it_expires() -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    master = "https://d1.cloudfront.net/outputs/game-1/master.m3u8"
    signed = cdn.signed_query(master, "https://d1.cloudfront.net/outputs/game-1/", "K2K", pem, NOW)
    base, _, query = signed.partition("?")
    params = urllib.parse.parse_qs(query)
    assert base == master and params["Key-Pair-Id"] == ["K2K"]
    # The policy grants the asset's folder (every playlist and segment) until the expiry
    policy = _cloudfront_b64(params["Policy"][0])
    (statement,) = json.loads(policy)["Statement"]
    assert statement["Resource"] == "https://d1.cloudfront.net/outputs/game-1/*"
    assert statement["Condition"]["DateLessThan"]["AWS:EpochTime"] == int(NOW)
    # AND CloudFront can verify the signature with the public key it holds
    signature = _cloudfront_b64(params["Signature"][0])
    private.public_key().verify(signature, policy, asym_padding.PKCS1v15(), hashes.SHA1())
    # AND a key CloudFront cannot use is refused by name
    for bad in (b"not a key", ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )):  # fmt: skip
        with pytest.raises(cdn.CdnKeyError):
            cdn.signed_query(master, master, "K2K", bad, NOW)

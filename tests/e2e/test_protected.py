"""Protected playback end to end on the local stack: an upload asking for
``x-amz-meta-vidflow-encryption: aes-128`` publishes AES-128 segments; the key service
(the KeyService function, from its build artefacts, behind its local function URL)
hands the key only for a valid playback token, the origin serves the asset only with
one, and hls.js in Chromium plays it to the end with a token from ``vidflow sign``'s
code path and fails with an expired, a forged or another asset's token.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import m3u8
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.asset import read_manifest
from tests.conftest import JobRun, upload_and_follow
from tests.e2e.test_live import (
    LADDER,
    RUNGS,
    Venue,
    frames_in,
    frames_over_http,
    real_segments,
    shown,
)
from tests.e2e.test_packaging import LAST_FRAME, MPD, play, player_site
from tests.readable import readable_texts
from workflow.formats import dash
from workflow.keys import cbcs, tokens
from workflow.keys import segments as aes128
from workflow.keys.service import PlaybackSecret
from workflow.keys.store import KeyStore
from workflow.live.paths import StreamPaths
from workflow.local.binaries import ffmpeg_binary
from workflow.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
__all__ = ["real_segments"]  # the fixture: real footage in 1 s segments


def _settings(engine: Any) -> Settings:
    return Settings.from_env(engine.functions["KeyServiceFunction"].environment)


def _store(engine: Any) -> KeyStore:
    settings = _settings(engine)
    return KeyStore(
        settings.keys_table,
        settings.content_key_kms_key,
        engine.client("dynamodb"),
        engine.client("kms"),
    )


def _secret(engine: Any) -> bytes:
    return PlaybackSecret(engine.client("secretsmanager"), _settings(engine).playback_secret).get()


def _token(engine: Any, asset: str, seconds: float = 600, viewer: str | None = None) -> str:
    return tokens.sign(_secret(engine), tokens.Grant(asset, int(time.time() + seconds), viewer))


def _bad_tokens(engine: Any, asset: str, other: str) -> list[str]:
    """An expired token for ``asset``, a forged one, and a valid one for ``other``."""
    genuine = _token(engine, asset)
    forged = genuine[:-4] + ("AAAA" if not genuine.endswith("AAAA") else "BBBB")
    return [_token(engine, asset, seconds=-1), forged, _token(engine, other)]


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    if token is not None:
        url += ("&" if "?" in url else "?") + f"token={token}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def _published(
    engine: Any, clip: Any, factory: pytest.TempPathFactory, name: str, **metadata: str
) -> JobRun:
    """The test clip uploaded as ``uploads/<name>.mp4`` with ``vidflow-<option>`` metadata,
    published."""
    run = upload_and_follow(
        engine,
        clip("h264_aac_2gop"),
        f"uploads/{name}.mp4",
        factory.mktemp(name),
        metadata={f"vidflow-{option}": value for option, value in metadata.items()},
    )
    assert run.status == "SUCCEEDED", run.failure
    return run


@pytest.fixture(scope="module")
def protected(engine: Any, clip: Any, tmp_path_factory: pytest.TempPathFactory) -> JobRun:
    return _published(engine, clip, tmp_path_factory, "protected", encryption="aes-128")


@pytest.fixture(scope="module")
def clear(engine: Any, clip: Any, tmp_path_factory: pytest.TempPathFactory) -> JobRun:
    return _published(engine, clip, tmp_path_factory, "clear")


def test_every_media_playlist_names_the_key_service_and_an_iv_per_segment(
    engine: Any, protected: JobRun
) -> None:
    assert protected.out is not None
    manifest = read_manifest(protected.out)
    key_uri = manifest["encryption"]["key_uri"]
    assert manifest["encryption"]["method"] == "aes-128"
    assert key_uri.endswith(f"/keys/{protected.job_id}")
    assert key_uri.startswith(engine.stack.function_urls["KeyServiceFunction"])
    playlists = [protected.out / r["playlist"] for r in manifest["renditions"]]
    playlists.append(protected.out / manifest["audio"]["playlist"])
    for path in playlists:
        parsed = m3u8.loads(path.read_text())
        assert parsed.segments, path
        ivs = set()
        for segment in parsed.segments:
            assert segment.key is not None and segment.key.method == "AES-128", path
            assert segment.key.uri == key_uri
            ivs.add(segment.key.iv)
        assert len(ivs) == len(parsed.segments), "every segment has an IV of its own"


def test_a_segment_decodes_only_with_the_key(engine: Any, protected: JobRun) -> None:
    # GIVEN a published segment of the top rung, as the bucket holds it
    assert protected.out is not None
    manifest = read_manifest(protected.out)
    rung = manifest["renditions"][0]["name"]
    first = m3u8.loads((protected.out / rung / "index.m3u8").read_text()).segments[0]
    path = protected.out / rung / first.uri
    # WHEN ffmpeg reads it as it is, THEN it finds no picture
    assert _decoded_frames(str(path)) == 0
    # AND decrypted by ffmpeg's own AES (its crypto protocol) with the asset's key and the
    # IV its playlist gives, it decodes every frame of the segment
    key = _store(engine).get(protected.job_id)
    iv = first.key.iv.removeprefix("0x")
    assert bytes.fromhex(iv) == aes128.segment_iv(f"{rung}/{first.uri}")
    frames = _decoded_frames(f"crypto:{path}", "-key", key.key.hex(), "-iv", iv)
    assert frames == round(first.duration * manifest["source"]["frame_rate"])


def _decoded_frames(source: str, *options: str) -> int:
    done = subprocess.run(
        [ffmpeg_binary(), "-v", "quiet", "-f", "mpegts", *options, "-i", source,
         "-map", "0:v?", "-f", "framemd5", "-"],
        capture_output=True, check=False,
    )  # fmt: skip
    return sum(1 for line in done.stdout.decode().splitlines() if line and line[0] != "#")


def test_the_key_service_answers_only_a_valid_token_for_the_asset(
    engine: Any, protected: JobRun, clear: JobRun
) -> None:
    assert protected.out is not None
    key_uri = read_manifest(protected.out)["encryption"]["key_uri"]
    key = _store(engine).get(protected.job_id).key
    # A valid token gets the key, by query or by header
    assert _get(key_uri, _token(engine, protected.job_id, viewer="fan-7")) == (200, key)
    request = urllib.request.Request(
        key_uri, headers={"Authorization": f"Bearer {_token(engine, protected.job_id)}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.read() == key
    # Missing, expired, forged and another asset's tokens get the same bare 403
    genuine = _token(engine, protected.job_id)
    claims, signature = genuine.split(".")[1:]
    forged_claims = (
        base64.urlsafe_b64encode(
            json.dumps({"a": protected.job_id, "e": int(time.time()) + 10**6}).encode()
        )
        .rstrip(b"=")
        .decode()
    )
    refused = {
        "missing": None,
        "expired": _token(engine, protected.job_id, seconds=-1),
        "forged signature": f"v1.{claims}.{signature[::-1]}",
        "forged claims": f"v1.{forged_claims}.{signature}",
        "another asset": _token(engine, clear.job_id),
        "another secret": tokens.sign(
            b"x" * 64, tokens.Grant(protected.job_id, int(time.time()) + 600)
        ),
        "garbage": "v1.%%%.###",
    }
    answers = {why: _get(key_uri, token) for why, token in refused.items()}
    assert answers == dict.fromkeys(refused, (403, b"forbidden")), answers
    # AND no refusal logged the token it refused
    log = engine.log_file.read_text()
    assert "key refused: bad signature" in log and "key refused: expired" in log
    for token in refused.values():
        if token:
            assert token not in log


def test_the_origin_serves_a_protected_asset_only_with_its_token(
    engine: Any, protected: JobRun, clear: JobRun
) -> None:
    origin = engine.endpoints.playback_url
    master = f"{origin}outputs/{protected.job_id}/master.m3u8"
    assert _get(master)[0] == 403
    assert _get(master, _token(engine, protected.job_id, seconds=-1))[0] == 403
    assert _get(master, _token(engine, clear.job_id))[0] == 403
    status, body = _get(master, _token(engine, protected.job_id))
    assert status == 200 and body.startswith(b"#EXTM3U")
    # A clear asset is served as before, token or not
    assert _get(f"{origin}outputs/{clear.job_id}/master.m3u8")[0] == 200


@pytest.mark.parametrize(
    ("method", "packaging", "protects"), [("aes-128", "cmaf", "hls-ts"), ("cbcs", "hls-ts", "cmaf")]
)
def test_an_upload_asking_for_a_method_its_packaging_lacks_fails_by_name(
    run_job: Any, clip: Any, method: str, packaging: str, protects: str
) -> None:
    # Each method protects one packaging: asked with the other, the job fails rather than
    # publish in clear
    run = run_job(
        clip("half_second"),
        key=f"uploads/protected-{packaging}.mp4",
        metadata={"vidflow-encryption": method, "vidflow-packaging": packaging},
    )
    assert run.status == "FAILED" and run.error == "UploadOptionError", run
    assert f"{method} encryption protects {protects} packaging" in run.failure["cause"]
    assert not [k for k in run.output_keys if k.endswith(("master.m3u8", ".ts", ".m4s"))]


def test_a_retried_plan_keeps_the_asset_s_one_key(engine: Any, protected: JobRun) -> None:
    # GIVEN the protected job's key, WHEN its Plan runs again (a retry, a duplicate event)
    before = _store(engine).get(protected.job_id)
    sfn = engine.client("stepfunctions")
    arn = engine.endpoints.state_machine_arn.replace(":stateMachine:", ":execution:")
    started = sfn.describe_execution(executionArn=f"{arn}:{protected.job_id}")
    event = {"job_id": protected.job_id, "source": json.loads(started["input"])["source"]}
    _, error = engine.invoke("PlanFunction", event)
    assert error is None, error
    # THEN the key is the one every published segment was encrypted with
    after = _store(engine).get(protected.job_id)
    assert (after.key_id, after.key) == (before.key_id, before.key)
    assert protected.out is not None
    assert read_manifest(protected.out)["encryption"]["key_id"] == after.key_id


def test_no_content_key_is_anywhere_a_person_could_read(
    engine: Any, protected: JobRun, sealed: JobRun
) -> None:
    texts = readable_texts(engine)
    table = _settings(engine).keys_table
    for item in engine.client("dynamodb").scan(TableName=table)["Items"]:
        texts[f"{table}/{item['asset']['S']}"] = json.dumps(item, default=str)
    for run in (protected, sealed):
        key = _store(engine).get(run.job_id).key
        shapes = [key.decode("latin-1"), key.hex(), key.hex().upper(),
                  base64.b64encode(key).decode(),
                  base64.urlsafe_b64encode(key).decode().rstrip("=")]  # fmt: skip
        assert any(run.job_id in name for name in texts)
        for name, text in texts.items():
            for shape in shapes:
                assert shape not in text, name


def _vidflow(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "vidflow"), *args],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_vidflow_sign_prints_a_url_that_plays_until_it_expires(
    engine: Any, protected: JobRun, tmp_path: Path
) -> None:
    # WHEN a person signs the asset for a viewer, against the running stack
    stack = ["--endpoint-url", engine.endpoints.endpoint_url]
    origin = ["--playback-url", engine.endpoints.playback_url]
    done = _vidflow(
        "sign", protected.job_id, "--expires", "10m", "--viewer", "fan-7", *stack, *origin
    )
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    # THEN the URL is the asset's master with a token for it, the viewer and ten minutes
    assert url.startswith(
        f"{engine.endpoints.playback_url}outputs/{protected.job_id}/master.m3u8?token="
    )
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["token"][0]
    grant = tokens.verify(_secret(engine), token, protected.job_id, time.time())
    assert grant.viewer == "fan-7" and 590 <= grant.expires_at - time.time() <= 600
    status, body = _get(url)
    assert status == 200 and b"#EXT-X-STREAM-INF" in body
    # AND a bad duration or asset name is a usage error, with nothing printed to play
    for bad in (["--expires", "soon"], ["--expires", "2x"]):
        refused = _vidflow("sign", protected.job_id, *bad, *stack, *origin)
        assert refused.returncode == 2 and not refused.stdout and "--expires" in refused.stderr
    refused = _vidflow("sign", "../other", *stack, *origin)
    assert refused.returncode == 2 and "asset" in refused.stderr

    # AND for a CloudFront distribution that trusts a key, the URL also carries its
    # signature over the asset's folder; half the CDN options, or a bad key, is refused
    pem = tmp_path / "cdn-private.pem"
    pem.write_bytes(
        rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cdn = ["--cdn-key-id", "K2K", "--cdn-private-key", str(pem)]
    signed = _vidflow("sign", protected.job_id, *cdn, *stack, *origin)
    assert signed.returncode == 0, signed.stderr
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(signed.stdout.strip()).query)
    assert set(query) == {"Policy", "Signature", "Key-Pair-Id", "token"}
    assert _get(signed.stdout.strip())[0] == 200
    for bad in (cdn[:2], ["--cdn-key-id", "K2K", "--cdn-private-key", str(tmp_path / "none")]):
        refused = _vidflow("sign", protected.job_id, *bad, *stack, *origin)
        assert refused.returncode == 2 and not refused.stdout and "--cdn" in refused.stderr


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The player page and its libraries on an origin of their own, as a web app would be."""
    with player_site(tmp_path_factory.mktemp("protected-site")) as url:
        yield url


def test_hls_js_plays_the_protected_asset_with_a_valid_token_only(
    engine: Any, protected: JobRun, clear: JobRun, site: str, browser: Any
) -> None:
    master = f"{engine.endpoints.playback_url}outputs/{protected.job_id}/master.m3u8"
    page = f"{site}/player.html?lib=hls&rate=4&src={urllib.parse.quote(master, safe='')}"
    # WHEN hls.js plays it with a valid token, THEN it plays to the end
    report = play(browser, f"{page}&token={_token(engine, protected.job_id)}")
    assert report["error"] is None, report
    assert report["ended"] and report["maxTime"] >= report["duration"] - LAST_FRAME, report
    assert report["frames"] > 0
    # AND with an expired, a forged or another asset's token it fails and plays nothing
    for token in _bad_tokens(engine, protected.job_id, clear.job_id):
        report = play(browser, f"{page}&token={token}")
        assert report["error"] is not None and report["maxTime"] == 0, report


def test_an_encrypted_stream_plays_live_and_recorded_only_with_its_token(
    engine: Any,
    real_segments: list[Path],
    tmp_path: Path,
    clear: JobRun,
    site: str,
    browser: Any,
) -> None:
    # GIVEN a venue whose stream.json asks for aes-128 and a new key every 2 segments,
    # pushing real footage
    venue = Venue(engine, "protected-live", tmp_path)
    venue.configure(
        segment_seconds=1, ladder=LADDER, gap_seconds=300, encryption="aes-128",
        key_rotation_segments=2,
    )  # fmt: skip
    asset = StreamPaths(venue.stream).asset
    for sequence in range(3):
        venue.push(sequence, real_segments[sequence])
    # (each rung's playlist is its own object, written beside the others: wait for all)
    venue.wait(lambda: all(len(shown(venue.playlist(rung))) == 3 for rung in RUNGS))
    # THEN every rung's live playlist names its period's key and an IV per segment
    key = _store(engine).get(asset)
    assert key.rotation == 2
    key_uri = f"{engine.stack.function_urls['KeyServiceFunction'].rstrip('/')}/keys/{asset}"
    paths = StreamPaths(venue.stream)
    for rung in RUNGS:
        parsed = m3u8.loads(venue.playlist(rung))
        assert len(parsed.segments) == 3, rung
        for sequence, segment in enumerate(parsed.segments):
            period = f"{key_uri}/{sequence // 2}"
            assert (segment.key.method, segment.key.uri) == ("AES-128", period), rung
            iv = aes128.segment_iv(f"{rung}/{segment.uri}")
            assert segment.key.iv == f"0x{iv.hex()}"
            # AND the bucket holds the segment encrypted: clear, it decodes; as it is, not
            body = venue.s3.get_object(
                Bucket=engine.endpoints.output_bucket, Key=f"{paths.prefix}{rung}/{segment.uri}"
            )["Body"].read()
            # (a clear TS segment has a sync byte at every 188th byte)
            assert set(body[::188]) != {0x47}, "MPEG-TS packets in the clear"
            opened = aes128.decrypt(aes128.period_key(key.key, sequence // 2), iv, body)
            assert set(opened[::188]) == {0x47}
    # AND the origin serves the stream only with a token for it; the key service the same
    live = f"{engine.endpoints.playback_url}{paths.live_master_key}"
    assert _get(live)[0] == 403
    assert _get(live, _token(engine, clear.job_id))[0] == 403
    assert _get(live, _token(engine, asset))[0] == 200
    signed = _vidflow(
        "sign", asset, "--endpoint-url", engine.endpoints.endpoint_url,
        "--playback-url", engine.endpoints.playback_url,
    )  # fmt: skip
    assert signed.returncode == 0 and signed.stdout.startswith(f"{live}?token="), signed
    assert _get(signed.stdout.strip())[0] == 200
    for period in (0, 1):
        expected = aes128.period_key(key.key, period)
        assert _get(f"{key_uri}/{period}", _token(engine, asset)) == (200, expected)
        assert _get(f"{key_uri}/{period}", _token(engine, clear.job_id))[0] == 403
    # (never the stream's own key, which opens every period, nor a period yet to begin: a
    # token must not stock up keys that would open the stream after it expires)
    assert _get(key_uri, _token(engine, asset))[0] == 404
    assert _get(f"{key_uri}/5", _token(engine, asset))[0] == 404
    # AND ffmpeg, reading the live playlist over HTTP with the token, decodes every frame
    bearer = {"headers": f"Authorization: Bearer {_token(engine, asset)}\r\n"}
    frames = sum(frames_in(s) for s in real_segments[:3])
    assert frames_over_http(live, bearer) == frames

    # WHEN the venue goes on pushing, then ends, while hls.js plays the live playlist
    def go_on() -> None:
        for sequence in range(3, len(real_segments)):
            time.sleep(1.0)
            venue.push(sequence, real_segments[sequence])
        venue.end()

    pushing = threading.Thread(target=go_on)
    quoted = urllib.parse.quote(live, safe="")
    pushing.start()
    report = play(
        browser,
        f"{site}/player.html?lib=hls&start=0&src={quoted}&token={_token(engine, asset)}",
        live=True,
    )
    pushing.join()
    # THEN it played what arrived while it played, across key periods, to the stream's end
    assert report["error"] is None and report["ended"], report
    assert report["maxTime"] > 4.0, report
    venue.wait(lambda: venue.read(paths.master_key) is not None)
    # THEN its recording says how it is protected, and hls.js plays it with a token only
    manifest = read_manifest(venue.download(tmp_path / "recorded"))
    assert manifest["encryption"] == {
        "method": "aes-128", "key_id": key.key_id, "key_uri": key_uri, "key_rotation_segments": 2
    }  # fmt: skip
    master = f"{engine.endpoints.playback_url}{paths.master_key}"
    page = f"{site}/player.html?lib=hls&rate=4&src={urllib.parse.quote(master, safe='')}"
    report = play(browser, f"{page}&token={_token(engine, asset)}")
    assert report["error"] is None and report["ended"] and report["frames"] > 0, report
    report = play(browser, f"{page}&token={_token(engine, clear.job_id)}")
    assert report["error"] is not None and report["maxTime"] == 0, report
    # AND a clip of it is refused by name, rather than published in the clear
    done = _vidflow(
        "clip", venue.stream, "--from", "0.5", "--to", "2.5", "--name", "hl",
        "--endpoint-url", engine.endpoints.endpoint_url,
    )  # fmt: skip
    assert done.returncode != 0 and "encrypted" in done.stderr, done
    assert "Traceback" not in done.stderr


@pytest.fixture(scope="module")
def sealed(engine: Any, clip: Any, tmp_path_factory: pytest.TempPathFactory) -> JobRun:
    """A CMAF asset protected with cbcs: the form every DRM system (and ClearKey) reads."""
    return _published(engine, clip, tmp_path_factory, "sealed", packaging="cmaf", encryption="cbcs")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_a_cbcs_asset_names_its_key_in_its_playlists_its_mpd_and_its_inits(
    engine: Any, sealed: JobRun
) -> None:
    assert sealed.out is not None
    manifest = read_manifest(sealed.out)
    key = _store(engine).get(sealed.job_id)
    key_uri = manifest["encryption"]["key_uri"]
    assert manifest["encryption"] == {
        "method": "cbcs", "key_id": key.key_id, "key_uri": key_uri
    }  # fmt: skip
    assert key_uri.startswith(engine.stack.function_urls["KeyServiceFunction"])
    rungs = [r["name"] for r in manifest["renditions"]] + ["audio"]
    for rung in rungs:
        # THEN each media playlist says SAMPLE-AES once, before its init, for every segment
        text = (sealed.out / rung / "index.m3u8").read_text()
        lines = text.splitlines()
        assert lines.count(cbcs.key_line(key_uri)) == 1, rung
        assert lines.index(cbcs.key_line(key_uri)) < lines.index('#EXT-X-MAP:URI="init.mp4"')
        segments = m3u8.loads(text).segments
        assert segments and all(s.key.method == "SAMPLE-AES" for s in segments), rung
        # AND its init names the scheme and the key id, never the key
        init = (sealed.out / rung / "init.mp4").read_bytes()
        assert b"cbcs" in init and bytes.fromhex(key.key_id) in init, rung
        assert (b"encv" if rung != "audio" else b"enca") in init and key.key not in init
    # AND the MPD says cbcs under the key id, and where ClearKey gets its license
    root = ET.parse(sealed.out / "manifest.mpd").getroot()
    sets = root.findall(f"{MPD}Period/{MPD}AdaptationSet")
    protected = [a for a in sets if a.get("contentType") in ("video", "audio")]
    assert len(protected) == 2
    for adaptation in protected:
        systems = {c.get("schemeIdUri"): c for c in adaptation.findall(f"{MPD}ContentProtection")}
        common = systems["urn:mpeg:dash:mp4protection:2011"]
        assert common.get("value") == "cbcs"
        assert common.get("{urn:mpeg:cenc:2013}default_KID") == str(uuid.UUID(key.key_id))
        clear_key = systems[dash.CLEAR_KEY]
        assert clear_key.findtext("{https://dashif.org/CPS}Laurl") == key_uri


def test_cbcs_segments_decode_only_with_the_key(
    engine: Any, sealed: JobRun, tmp_path: Path
) -> None:
    assert sealed.out is not None
    manifest = read_manifest(sealed.out)
    key = _store(engine).get(sealed.job_id).key
    top = manifest["renditions"][0]["name"]
    for rung, stream in ((top, "0:v"), ("audio", "0:a")):
        # GIVEN the rung's init and every segment, as the bucket holds them
        segments = m3u8.loads((sealed.out / rung / "index.m3u8").read_text()).segments
        whole = tmp_path / f"{rung}.mp4"
        whole.write_bytes(
            (sealed.out / rung / "init.mp4").read_bytes()
            + b"".join((sealed.out / rung / s.uri).read_bytes() for s in segments)
        )
        # WHEN ffmpeg decodes them with the key, THEN every frame decodes cleanly
        opened, said = _frames(whole, stream, key)
        assert not said, said
        if rung == top:
            expected = manifest["source"]["duration"] * manifest["source"]["frame_rate"]
            assert len(opened) == round(expected)
        # AND without the key (or with another) it decodes noise and says so
        for wrong in (None, bytes(16)):
            garbled, said = _frames(whole, stream, wrong)
            assert garbled != opened and said, rung


def _frames(path: Path, stream: str, key: bytes | None) -> tuple[list[str], str]:
    extra = [] if key is None else ["-decryption_key", key.hex()]
    done = subprocess.run(
        [ffmpeg_binary(), "-v", "error", *extra, "-i", str(path), "-map", stream,
         "-f", "framemd5", "-"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    frames = [line.rsplit(",", 1)[-1] for line in done.stdout.splitlines() if line[:1] != "#"]
    return frames, done.stderr.strip()


def test_the_key_service_answers_a_clear_key_license_to_a_valid_token_only(
    engine: Any, sealed: JobRun, clear: JobRun
) -> None:
    assert sealed.out is not None
    key_uri = read_manifest(sealed.out)["encryption"]["key_uri"]
    key = _store(engine).get(sealed.job_id)
    asked = json.dumps({"kids": [_b64url(bytes.fromhex(key.key_id))], "type": "temporary"})

    def post(token: str) -> tuple[int, bytes]:
        request = urllib.request.Request(
            f"{key_uri}?token={token}", data=asked.encode(), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as refused:
            return refused.code, refused.read()

    # A browser may ask first (a preflight): the function URL's Cors lets it
    preflight = urllib.request.Request(
        key_uri,
        method="OPTIONS",
        headers={
            "Origin": "http://player.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    with urllib.request.urlopen(preflight, timeout=30) as response:
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
    # WHEN a CDM's license request comes with a valid token, THEN the license holds the key
    status, body = post(_token(engine, sealed.job_id, viewer="fan-9"))
    assert status == 200
    assert json.loads(body)["keys"] == [
        {"kty": "oct", "kid": _b64url(bytes.fromhex(key.key_id)), "k": _b64url(key.key)}
    ]
    # AND with an expired or another asset's token, a bare 403
    for refused in (_token(engine, sealed.job_id, seconds=-1), _token(engine, clear.job_id)):
        assert post(refused) == (403, b"forbidden")


@pytest.mark.parametrize("manifest", ["master.m3u8", "manifest.mpd"], ids=["hls", "dash"])
def test_shaka_plays_the_cbcs_asset_with_clear_key_and_a_valid_token_only(
    engine: Any, sealed: JobRun, clear: JobRun, site: str, browser: Any, manifest: str
) -> None:
    src = f"{engine.endpoints.playback_url}outputs/{sealed.job_id}/{manifest}"
    page = f"{site}/player.html?lib=shaka&rate=4&src={urllib.parse.quote(src, safe='')}"
    # WHEN shaka-player plays it with a valid token, THEN it plays to the end, through EME
    report = play(browser, f"{page}&token={_token(engine, sealed.job_id)}")
    assert report["error"] is None, report
    assert report["maxTime"] >= report["duration"] - LAST_FRAME, report
    assert report["frames"] > 0 and report["keySystem"] == "org.w3.clearkey", report
    # AND with an expired, a forged or another asset's token it fails and plays nothing
    for token in _bad_tokens(engine, sealed.job_id, clear.job_id):
        report = play(browser, f"{page}&token={token}")
        assert report["error"] is not None and report["maxTime"] == 0, report

"""The records a VOD job's states hand each other through Step Functions and S3.

Each is typed, and each crosses a boundary only as its ``to_dict`` (JSON) and comes back
through ``from_dict``; the dict shapes are what the state machine and the S3 scratch
files hold, so they stay stable across a deploy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from workflow.media.audio_pieces import AudioPiece
from workflow.media.chunks import Chunk, FrameIndex
from workflow.media.facts import SourceFacts
from workflow.media.ladder import Rendition
from workflow.media.subtitles import Sidecar
from workflow.shapes import known_fields
from workflow.storage import Pin


@dataclass(frozen=True)
class Source:
    """The one upload a job reads, as its S3 event named it."""

    bucket: str
    key: str
    etag: str = ""
    version_id: str | None = None
    size: int = 0
    # When S3 says the upload was made (its event's time, ISO 8601), if it said.
    uploaded_at: str | None = None

    @property
    def pin(self) -> Pin:
        """Every read of the upload is pinned to this object (``storage.Pin``)."""
        return Pin.of(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Source:
        return cls(
            bucket=data["bucket"],
            key=data["key"],
            etag=data.get("etag") or "",
            version_id=data.get("version_id"),
            size=int(data.get("size") or 0),
            uploaded_at=data.get("uploaded_at"),
        )


@dataclass(frozen=True)
class ProbeRecord:
    """What Probe found: the source's facts, its index, the packaging asked for, and what
    it cost (seconds, and bytes of the upload read)."""

    facts: SourceFacts
    index: FrameIndex
    packaging: str
    elapsed: float
    read_bytes: int = 0
    ladder_mode: str = "fixed"
    encryption: str = "none"

    def to_dict(self) -> dict[str, Any]:
        return {
            "facts": self.facts.to_dict(),
            "index": self.index.to_dict(),
            "packaging": self.packaging,
            "elapsed": self.elapsed,
            "read_bytes": self.read_bytes,
            "ladder_mode": self.ladder_mode,
            "encryption": self.encryption,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeRecord:
        return cls(
            facts=SourceFacts.from_dict(data["facts"]),
            index=FrameIndex.from_dict(data["index"]),
            packaging=data["packaging"],
            elapsed=float(data["elapsed"]),
            read_bytes=int(data.get("read_bytes", 0)),
            ladder_mode=data.get("ladder_mode", "fixed"),
            encryption=data.get("encryption", "none"),
        )


ANALYSIS = "analysis"


@dataclass(frozen=True)
class ImagesPiece:
    """Ticks ``[first, first + ticks)`` of the images: whole sprite sheets
    (``images.image_pieces``). The first piece also makes the poster and the VTT map."""

    first: int
    ticks: int


@dataclass(frozen=True)
class WorkItem:
    """One entry of the Map's item list: a video chunk, a piece of the audio, a piece of
    the images, or one sidecar subtitle file (with the ETag its reads are pinned to); or,
    before them, a span a per-title ladder is analysed on (``ANALYSIS``, its span a
    chunk). An images item without a piece (a plan from before pieces) makes them all."""

    kind: str
    chunk: Chunk | None = None
    piece: AudioPiece | None = None
    sidecar: Sidecar | None = None
    etag: str | None = None
    images: ImagesPiece | None = None

    # Items beside the audio and the video chunks; each leaves a result to publish.
    EXTRA_KINDS = ("images", "subtitles")

    @property
    def name(self) -> str:
        """The name of the item's result and error records."""
        if self.kind == ANALYSIS and self.chunk is not None:
            return f"{ANALYSIS}-{self.chunk.index:05d}"
        if self.chunk is not None:
            return self.chunk.item
        if self.piece is not None:
            return self.piece.item
        if self.sidecar is not None:
            return f"subtitles-{self.sidecar.language}"
        if self.images is not None and self.images.first:
            return f"{self.kind}-{self.images.first:05d}"
        return self.kind

    def video_chunk(self) -> Chunk:
        if self.chunk is None:
            raise ValueError(f"a {self.kind} item has no chunk to encode")
        return self.chunk

    def audio_piece(self) -> AudioPiece:
        if self.piece is None:
            raise ValueError(f"a {self.kind} item has no audio piece to encode")
        return self.piece

    def subtitle_sidecar(self) -> Sidecar:
        if self.sidecar is None:
            raise ValueError(f"a {self.kind} item has no sidecar to convert")
        return self.sidecar

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind}
        if self.sidecar is not None:
            data |= {"sidecar": asdict(self.sidecar), "etag": self.etag}
        if self.chunk is not None:
            data["chunk"] = self.chunk.to_dict()
        if self.piece is not None:
            data["piece"] = self.piece.to_dict()
        if self.images is not None:
            data["images"] = asdict(self.images)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkItem:
        return cls(
            kind=data["kind"],
            chunk=Chunk.from_dict(data["chunk"]) if "chunk" in data else None,
            piece=AudioPiece.from_dict(data["piece"]) if "piece" in data else None,
            sidecar=Sidecar(**known_fields(Sidecar, data["sidecar"]))
            if "sidecar" in data
            else None,
            etag=data.get("etag"),
            images=ImagesPiece(**known_fields(ImagesPiece, data["images"]))
            if "images" in data
            else None,
        )


@dataclass(frozen=True)
class Plan:
    """What Plan decided: the ladder, the chunks, the audio's pieces (none without audio)
    and the settings every item encodes with."""

    facts: SourceFacts
    renditions: list[Rendition]
    chunks: list[Chunk]
    audio_pieces: list[AudioPiece]
    segment_seconds: float
    audio_kbps: int
    preset: str
    packaging: str
    thumbnail_seconds: float
    extras: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    # How the ladder was chosen: ``mode``; per-title, the fixed ladder it started from and
    # each rung's decision (``vod.plan.choose_ladder``).
    ladder: dict[str, Any] = field(default_factory=lambda: {"mode": "fixed"})
    # Every this-many-th frame is scored for the quality report; 0: no report. Of each
    # chunk's segments, those ``quality.sampled_segments`` picks with
    # ``quality_segment_every`` are scored.
    quality_stride: int = 0
    quality_segment_every: int = 1
    # Protected output: ``method`` ("aes-128" or "cbcs") and the content key's ``key_id`` (never the
    # key: items unwrap it from the key store); None for clear output.
    encryption: dict[str, str] | None = None

    @property
    def cmaf(self) -> bool:
        return self.packaging == "cmaf"

    @property
    def items(self) -> list[str]:
        """Every item's name: the chunks, the audio's pieces, the extras."""
        return [c.item for c in self.chunks] + [p.item for p in self.audio_pieces] + self.extras

    def to_dict(self) -> dict[str, Any]:
        return {
            "facts": self.facts.to_dict(),
            "renditions": [r.to_dict() for r in self.renditions],
            "chunks": [c.to_dict() for c in self.chunks],
            "audio_pieces": [p.to_dict() for p in self.audio_pieces],
            "segment_seconds": self.segment_seconds,
            "audio_kbps": self.audio_kbps,
            "preset": self.preset,
            "packaging": self.packaging,
            "thumbnail_seconds": self.thumbnail_seconds,
            "extras": self.extras,
            "timings": self.timings,
            "ladder": self.ladder,
            "quality_stride": self.quality_stride,
            "quality_segment_every": self.quality_segment_every,
            "encryption": self.encryption,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(
            facts=SourceFacts.from_dict(data["facts"]),
            renditions=[Rendition.from_dict(r) for r in data["renditions"]],
            chunks=[Chunk.from_dict(c) for c in data["chunks"]],
            audio_pieces=[AudioPiece.from_dict(p) for p in data["audio_pieces"]],
            segment_seconds=float(data["segment_seconds"]),
            audio_kbps=int(data["audio_kbps"]),
            preset=data["preset"],
            packaging=data["packaging"],
            thumbnail_seconds=float(data["thumbnail_seconds"]),
            extras=list(data["extras"]),
            timings=dict(data["timings"]),
            ladder=dict(data.get("ladder") or {"mode": "fixed"}),
            quality_stride=int(data.get("quality_stride", 0)),
            quality_segment_every=int(data.get("quality_segment_every", 1)),
            encryption=data.get("encryption"),
        )


@dataclass(frozen=True)
class SegmentsResult:
    """What an encoding item (a chunk, or a piece of the audio) uploaded: per rung its segments
    (``uri``, ``duration``, ``bytes``) and, for CMAF, its init's digest and timescale."""

    item: str
    rungs: dict[str, list[dict[str, Any]]]
    inits: dict[str, dict[str, Any]]
    wall_seconds: float
    finished_at: str
    encode_seconds: float | None = None
    # The memory of the function that encoded it: what its seconds cost.
    memory_mb: int = 0
    # A chunk's scored frames per rung (``quality.Scores.to_dict``), if the plan asked.
    quality: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentsResult:
        return cls(**known_fields(cls, data))


@dataclass(frozen=True)
class SubtitlesResult:
    """What a Subtitles item wrote: one language's WebVTT, from one sidecar."""

    item: str
    language: str
    source_key: str
    finished_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubtitlesResult:
        return cls(**known_fields(cls, data))


@dataclass(frozen=True)
class ImagesResult:
    """What an images item wrote under ``images/``. The first piece's (item ``images``)
    speaks for all of them: the poster, the thumbnails (count, interval, size, the first
    one's path) and the sprite sheets (count, grid, their VTT), every piece's counted.
    A later piece's has no poster, and counts its own."""

    item: str
    poster: str | None
    poster_time: float | None
    thumbnails: dict[str, Any]
    sprites: dict[str, Any]
    wall_seconds: float
    finished_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImagesResult:
        return cls(**known_fields(cls, data))

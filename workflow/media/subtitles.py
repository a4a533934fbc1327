"""Sidecar subtitle files: found next to a video, normalised to WebVTT, listed in HLS.

A sidecar is ``uploads/<stem>.<lang>.vtt`` or ``.srt`` (or ``uploads/<stem>.vtt`` with
no language, "und") in the video's own folder, uploaded before the video. ffmpeg parses
it with exactly one demuxer; the cues it writes are then re-serialised here, so every
published file is plain, well-formed WebVTT whatever the upload held.
"""

from __future__ import annotations

import codecs
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import ffmpeg

from workflow.errors import SubtitleError, TranscodeError
from workflow.media.runner import run_ffmpeg

SIDECAR_FORMATS = ("vtt", "srt")
MAX_SIDECARS = 20
MAX_SUBTITLE_BYTES = 2 * 1024 * 1024
# ffmpeg's SubRip decoder takes time that grows with the square of a cue's text: 400 kB
# in one cue is seconds, 2 MB minutes. A screen holds a few hundred characters.
MAX_CUE_CHARACTERS = 10_000
# The one demuxer each sidecar format is read with; ffmpeg's own guess is never used.
DEMUXER_FOR_FORMAT = {"srt": "srt", "vtt": "webvtt", "webvtt": "webvtt"}
SUBTITLE_DEMUXERS = ("srt", "webvtt")
UNDETERMINED = "und"

# BCP 47-ish: a 2-3 letter language, then up to three 2-8 character subtags (script,
# region, variant). No quotes, commas or dots can pass, so the tag is safe in a quoted
# HLS attribute, in a file name and in a URI.
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8}){0,3}")
_TIMING = re.compile(
    r"(?P<start>(?:\d+:)?\d{2}:\d{2}\.\d{3}) --> (?P<end>(?:\d+:)?\d{2}:\d{2}\.\d{3})"
    r"(?P<settings>[ \t].*)?",
    re.ASCII,  # \d: 0-9 only, as WebVTT's timestamps are
)
# A cue's timing line as uploaded, SubRip's comma or WebVTT's dot, matched loosely (any
# sign, any number of digits) so that every line ffmpeg would read as one is checked
# here: ffmpeg reads "00:00:75,000" as 75 s, a cue ending before it starts as one
# lasting to the next, the fraction as whole milliseconds ("01,5" is 1.005 s) and
# "-00:00:01,000" as 1 s; it skips spaces inside a time ("00:00: 01,000").
_LOOSE_TIME = r"[-+]?[ \t]*\d+(?:[ \t]*:[ \t]*[-+]?[ \t]*\d+){1,2}[ \t]*[.,][ \t]*[-+]?[ \t]*\d+"
_UPLOADED_TIMING = re.compile(
    rf"[ \t]*(?P<start>{_LOOSE_TIME})[ \t]*-->[ \t]*(?P<end>{_LOOSE_TIME})", re.ASCII
)
# A cue time ffmpeg and this check read alike; digits bounded so none is a huge number.
_CUE_TIME = re.compile(
    r"(?:(?P<hours>\d{1,5}):)?(?P<minutes>\d{1,2}):(?P<seconds>\d{1,2})[.,](?P<millis>\d{3})",
    re.ASCII,
)
# A cue setting is a whole word of the timing line's tail (``xline:0`` is none).
_SETTING = re.compile(r"(?<!\S)(?:vertical|line|position|size|align):[A-Za-z0-9.%,-]+(?!\S)")
# Text that is not a WebVTT tag or character reference is escaped; a player would
# otherwise swallow "a < b" as a tag, or end the cue at a line holding "-->".
_NOT_A_TAG = re.compile(r"<(?!/?(?:[cibuv]|lang|ruby|rt)(?:[.\s][^<>]*)?>|[0-9][0-9:.]*>)")
_NOT_A_REFERENCE = re.compile(
    r"&(?!(?:[A-Za-z][A-Za-z0-9]{1,31}|#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6});)"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")

# NAME values in each language's own words; other tags are named by their language.
_NAMES = {
    "und": "Subtitles",
    "ar": "العربية",
    "de": "Deutsch",
    "en": "English",
    "en-GB": "English (UK)",
    "en-US": "English (US)",
    "es": "Español",
    "es-419": "Español (Latinoamérica)",
    "fr": "Français",
    "fr-CA": "Français (Canada)",
    "hi": "हिन्दी",
    "it": "Italiano",
    "ja": "日本語",
    "ko": "한국어",
    "nl": "Nederlands",
    "pl": "Polski",
    "pt": "Português",
    "pt-BR": "Português (Brasil)",
    "ru": "Русский",
    "sv": "Svenska",
    "tr": "Türkçe",
    "zh": "中文",
    "zh-Hans": "简体中文",
    "zh-Hant": "繁體中文",
}


@dataclass(frozen=True)
class Sidecar:
    """One subtitle file uploaded next to a video."""

    key: str
    language: str
    format: str


@dataclass(frozen=True)
class SubtitleTrack:
    """One published subtitle language: ``subtitles/<language>.m3u8`` and ``.vtt``."""

    language: str
    name: str = ""

    def __post_init__(self) -> None:
        if canonical_language(self.language) != self.language:
            raise ValueError(f"{self.language!r} is not a canonical language tag")
        if any(c in self.name for c in '"\r\n'):
            raise ValueError(f"subtitle name {self.name!r} cannot be quoted in HLS")

    @property
    def display_name(self) -> str:
        return self.name or language_name(self.language)

    @property
    def playlist_uri(self) -> str:
        """The media playlist, relative to the master playlist."""
        return f"subtitles/{self.language}.m3u8"

    @property
    def webvtt_uri(self) -> str:
        """The WebVTT file, relative to the master playlist."""
        return f"subtitles/{self.language}.vtt"


def canonical_language(tag: str) -> str | None:
    """``tag`` in BCP 47's usual case (``pt-BR``, ``zh-Hant``), or None if it is not one."""
    if not _LANGUAGE.fullmatch(tag):
        return None
    first, *rest = tag.split("-")
    parts = [first.lower()]
    for part in rest:
        if len(part) == 4 and part.isalpha():
            parts.append(part.title())
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            parts.append(part.upper())
        else:
            parts.append(part.lower())
    return "-".join(parts)


# Every language ISO 639-1 gives a two-letter code, with its ISO 639-2 codes (terminology,
# then bibliographic where that differs), as MP4, Matroska and MPEG-TS tag a stream: BCP 47
# uses the two-letter code where one exists, and registers no three-letter one for it
# ("ces" is no tag a player matches with "cs").
_ISO_639_1_TO_2 = """
    aa:aar ab:abk ae:ave af:afr ak:aka am:amh an:arg ar:ara as:asm av:ava ay:aym az:aze
    ba:bak be:bel bg:bul bh:bih bi:bis bm:bam bn:ben bo:bod/tib br:bre bs:bos ca:cat
    ce:che ch:cha co:cos cr:cre cs:ces/cze cu:chu cv:chv cy:cym/wel da:dan de:deu/ger
    dv:div dz:dzo ee:ewe el:ell/gre en:eng eo:epo es:spa et:est eu:eus/baq fa:fas/per
    ff:ful fi:fin fj:fij fo:fao fr:fra/fre fy:fry ga:gle gd:gla gl:glg gn:grn gu:guj
    gv:glv ha:hau he:heb hi:hin ho:hmo hr:hrv ht:hat hu:hun hy:hye/arm hz:her ia:ina
    id:ind ie:ile ig:ibo ii:iii ik:ipk io:ido is:isl/ice it:ita iu:iku ja:jpn jv:jav
    ka:kat/geo kg:kon ki:kik kj:kua kk:kaz kl:kal km:khm kn:kan ko:kor kr:kau ks:kas
    ku:kur kv:kom kw:cor ky:kir la:lat lb:ltz lg:lug li:lim ln:lin lo:lao lt:lit lu:lub
    lv:lav mg:mlg mh:mah mi:mri/mao mk:mkd/mac ml:mal mn:mon mr:mar ms:msa/may mt:mlt
    my:mya/bur na:nau nb:nob nd:nde ne:nep ng:ndo nl:nld/dut nn:nno no:nor nr:nbl nv:nav
    ny:nya oc:oci oj:oji om:orm or:ori os:oss pa:pan pi:pli pl:pol ps:pus pt:por qu:que
    rm:roh rn:run ro:ron/rum ru:rus rw:kin sa:san sc:srd sd:snd se:sme sg:sag si:sin
    sk:slk/slo sl:slv sm:smo sn:sna so:som sq:sqi/alb sr:srp ss:ssw st:sot su:sun sv:swe
    sw:swa ta:tam te:tel tg:tgk th:tha ti:tir tk:tuk tl:tgl tn:tsn to:ton tr:tur ts:tso
    tt:tat tw:twi ty:tah ug:uig uk:ukr ur:urd uz:uzb ve:ven vi:vie vo:vol wa:wln wo:wol
    xh:xho yi:yid yo:yor za:zha zh:zho/chi zu:zul
"""
_ISO_639_2 = {
    three: two
    for pair in _ISO_639_1_TO_2.split()
    for two, _, threes in [pair.partition(":")]
    for three in threes.split("/")
}


def bcp47_language(tag: str) -> str | None:
    """``tag`` as the BCP 47 tag HLS and DASH name (canonical case, ``eng`` -> ``en``,
    ``por-br`` -> ``pt-BR``), or None if it is not one."""
    language = canonical_language(tag)
    if language is None:
        return None
    primary, _, rest = language.partition("-")
    primary = _ISO_639_2.get(primary, primary)
    return f"{primary}-{rest}" if rest else primary


def stream_language(tag: str | None) -> str | None:
    """A container's language tag for a stream as the tag HLS and DASH name (``eng`` ->
    ``en``); None where it says none, ``und``, or nothing a tag can be."""
    language = bcp47_language((tag or "").strip())
    return None if language == UNDETERMINED else language


def language_name(language: str) -> str:
    """A human-readable NAME for ``language``: from the table, else its language's plus the tag."""
    if language in _NAMES:
        return _NAMES[language]
    primary = language.split("-")[0]
    return f"{_NAMES[primary]} ({language})" if primary in _NAMES else language


def is_sidecar(key: str) -> bool:
    """True for uploads that accompany a video (subtitles), not videos."""
    return key.lower().endswith((".vtt", ".srt"))


def _sidecar_of(video_folder: str, stem: str, key: str) -> Sidecar | None:
    folder, _, name = key.rpartition("/")
    base, dot, extension = name.rpartition(".")
    fmt = extension.lower()
    if folder != video_folder or not dot or fmt not in SIDECAR_FORMATS:
        return None
    if base == stem:
        return Sidecar(key, UNDETERMINED, fmt)
    if not base.startswith(stem + "."):
        return None
    language = bcp47_language(base[len(stem) + 1 :])
    return Sidecar(key, language, fmt) if language else None


def check_size(key: str, size: int) -> None:
    """Raise ``SubtitleError`` for a sidecar of more than ``MAX_SUBTITLE_BYTES``."""
    if size > MAX_SUBTITLE_BYTES:
        raise SubtitleError(
            f"{key} is {size} bytes; a subtitle file may be {MAX_SUBTITLE_BYTES} bytes at most"
        )


def sidecar_prefix(video_key: str) -> str:
    """What every sidecar's key of ``video_key`` starts with: ``<folder>/<stem>.``, the key
    as it is (a path library would fold ``//`` and ``/./``, which S3 keeps)."""
    folder, slash, name = video_key.rpartition("/")
    return f"{folder}{slash}{name.rpartition('.')[0] or name}."


def find_sidecars(video_key: str, keys: Iterable[str]) -> list[Sidecar]:
    """The subtitle files uploaded next to ``video_key`` among ``keys``, one per language.

    Only the video's own folder counts. Tags are compared as BCP 47 names them (canonical
    case, ``eng`` as ``en``); where one language has several files, ``.vtt`` wins, then
    the first key in sort order. Sorted
    by language. More than ``MAX_SIDECARS`` languages raises ``SubtitleError``: dropping
    some silently would publish an asset without captions the user expects.
    """
    folder, _, name = video_key.rpartition("/")
    stem = name.rpartition(".")[0] or name
    chosen: dict[str, Sidecar] = {}
    for key in sorted(set(keys)):
        sidecar = _sidecar_of(folder, stem, key)
        if sidecar is None:
            continue
        held = chosen.get(sidecar.language)
        if held is None or (held.format == "srt" and sidecar.format == "vtt"):
            chosen[sidecar.language] = sidecar
    if len(chosen) > MAX_SIDECARS:
        raise SubtitleError(
            f"{name} has subtitle files in {len(chosen)} languages; at most {MAX_SIDECARS} "
            "are allowed: remove some and upload the video again"
        )
    return [chosen[language] for language in sorted(chosen, key=str.casefold)]


def build_webvtt_command(source: Path, fmt: str, target: Path, *, binary: str) -> list[str]:
    """ffmpeg reading ``source`` with exactly its format's demuxer and writing WebVTT.

    WebVTT input is copied (cue settings, identifiers and voice spans survive); SubRip
    is converted by ffmpeg's WebVTT encoder.
    """
    demuxer = DEMUXER_FOR_FORMAT.get(fmt)
    if demuxer is None:
        raise ValueError(f"subtitle format {fmt!r} is not one of {SIDECAR_FORMATS}")
    stream = ffmpeg.input(
        str(source),
        f=demuxer,
        format_whitelist=",".join(SUBTITLE_DEMUXERS),
        protocol_whitelist="file",
    )
    codec = "copy" if demuxer == "webvtt" else "webvtt"
    command = (
        stream.output(str(target), f="webvtt", **{"c:s": codec})
        .global_args("-nostdin", "-hide_banner", "-loglevel", "error")
        .overwrite_output()
    )
    return list(ffmpeg.compile(command, cmd=binary))


def _subtitle_text(data: bytes, fmt: str) -> str:
    """The upload as text with LF line endings, or a ``SubtitleError`` saying what is wrong."""
    if len(data) > MAX_SUBTITLE_BYTES:
        raise SubtitleError(
            f"the subtitle file is {len(data) / 1048576:.1f} MB; at most "
            f"{MAX_SUBTITLE_BYTES // 1048576} MB is allowed"
        )
    # A byte-order mark says which encoding the text is in: Windows tools save "Unicode"
    # text as UTF-16 with one. Without one, only UTF-8 is read (Latin-1 and UTF-8 cannot
    # be told apart with certainty).
    utf16 = data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    encoding = "UTF-16" if utf16 else "UTF-8"
    try:
        text = data.decode("utf-16" if utf16 else "utf-8-sig")
    except UnicodeDecodeError as error:
        raise SubtitleError(
            f"the subtitle file is not {encoding} text (byte 0x{data[error.start]:02x} at "
            f"offset {error.start}): save it as UTF-8 and upload it again"
        ) from None
    if _CONTROL.search(text):
        raise SubtitleError("the subtitle file holds binary data, not subtitle text")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise SubtitleError("the subtitle file is empty")
    if fmt == "srt" and text.lstrip().startswith("WEBVTT"):
        raise SubtitleError("the .srt subtitle file is WebVTT: rename it to .vtt")
    return text


def _header_ended(text: str) -> str:
    """WebVTT ``text`` with an empty line after its header where a cue follows it at once.

    WebVTT's parser ends the header at a line with "-->", a cue's; ffmpeg reads on to the
    first empty line and loses that cue (all of them, where no empty line follows).
    """
    header, _, rest = text.partition("\n\n")
    lines = header.split("\n")
    arrow = next((i for i, line in enumerate(lines) if i and "-->" in line), None)
    if arrow is None:
        return text
    return "\n".join([*lines[:arrow], "", *lines[arrow:], "", rest])


def _seconds(timestamp: str, line: int) -> float:
    """A cue time's seconds, or a ``SubtitleError`` naming the line if it is not a time
    that ffmpeg reads as written."""
    shown = timestamp if len(timestamp) <= 40 else timestamp[:40] + "..."
    if "-" in timestamp or "+" in timestamp:
        raise SubtitleError(f"line {line}: {shown} has a sign; cue times are never negative")
    if " " in timestamp or "\t" in timestamp:
        raise SubtitleError(f"line {line}: {shown!r} has a space inside it; write 00:00:01,250")
    time = _CUE_TIME.fullmatch(timestamp)
    if time is None:
        separator = "," if "," in timestamp else "."
        if len(timestamp.rpartition(separator)[2]) != 3:
            raise SubtitleError(
                f"line {line}: {shown} needs exactly three digits of milliseconds after "
                f"the '{separator}' (1.25 s is 00:00:01{separator}250)"
            )
        raise SubtitleError(
            f"line {line}: {shown} is not a time (hours:minutes:seconds{separator}milliseconds, "
            f"as 00:00:01{separator}250)"
        )
    hours, minutes, seconds = (int(time[part] or 0) for part in ("hours", "minutes", "seconds"))
    if minutes > 59 or seconds > 59:
        raise SubtitleError(
            f"line {line}: {timestamp} is not a time (minutes and seconds run from 00 to 59)"
        )
    return hours * 3600 + minutes * 60 + seconds + int(time["millis"]) / 1000


def _check_cue_times(text: str) -> None:
    """Refuse a cue time that is out of range, or a cue that ends before it starts."""
    for number, line in enumerate(text.split("\n"), start=1):
        if timing := _UPLOADED_TIMING.match(line):
            start, end = timing["start"], timing["end"]
            if _seconds(start, number) > _seconds(end, number):
                raise SubtitleError(
                    f"line {number}: the cue ends at {end}, before it starts at {start}"
                )


def _check_cue_lengths(text: str) -> None:
    """Refuse a SubRip cue whose text is longer than ``MAX_CUE_CHARACTERS``: all that
    comes after its timing line up to the next, as ffmpeg reads it."""
    start, length = 0, 0
    for number, line in enumerate(text.split("\n"), start=1):
        if _UPLOADED_TIMING.match(line):
            start, length = number, 0
        elif start and (length := length + len(line) + 1) > MAX_CUE_CHARACTERS:
            raise SubtitleError(
                f"line {start}: the cue's text runs past {MAX_CUE_CHARACTERS} characters; "
                "split it into cues a screen can hold"
            )


def _timing_line(lines: list[str]) -> tuple[int, re.Match[str]] | None:
    """Where a cue block's timing line is (first, or after an identifier), and its match."""
    return next(
        ((i, m) for i, line in enumerate(lines[:2]) if (m := _TIMING.fullmatch(line))), None
    )


def _cue_block(lines: list[str]) -> str | None:
    """One cue as well-formed WebVTT, or None if it is not a cue or shows nothing."""
    found = _timing_line(lines)
    if found is None:
        return None
    at, timing = found
    if _millis(timing["end"]) <= _millis(timing["start"]):
        return None  # WebVTT's end is after its start: a cue of no length shows nothing
    settings = _SETTING.findall(timing["settings"] or "")
    head = [" ".join([timing["start"], "-->", timing["end"], *settings])]
    if at == 1 and "-->" not in lines[0]:  # a cue identifier
        head.insert(0, lines[0].strip())
    # A line of spaces shows nothing, and a parser that took it for an empty line would
    # end the cue there.
    payload = [
        _NOT_A_REFERENCE.sub("&amp;", _NOT_A_TAG.sub("&lt;", line)).replace("-->", "--&gt;")
        for line in lines[at + 1 :]
        if line.strip()
    ]
    return "\n".join(head + payload) if any(line.strip() for line in payload) else None


def _reserialise(written: str) -> list[str]:
    """The cues of ffmpeg's WebVTT output, each rewritten as a clean block.

    Only an empty line ends a cue, as in WebVTT's parser: a line of spaces is part of it.
    A timing line inside a cue starts the next cue there, as that parser reads it (an
    upload without the empty line between two cues; ffmpeg keeps it as text); the cues
    are then in order of their start.
    """
    pieces = []
    for block in re.split(r"\n{2,}", written.strip()):
        lines = block.split("\n")
        while (found := _timing_line(lines)) is not None:
            nested = [i for i in range(found[0] + 1, len(lines)) if _TIMING.fullmatch(lines[i])]
            if not nested:
                break
            pieces.append(lines[: nested[0]])
            lines = lines[nested[0] :]
        pieces.append(lines)
    cues = [cue for cue in (_cue_block(piece) for piece in pieces) if cue is not None]
    # A cue identifier names one cue in the file; a repeated one is left out.
    named: set[str] = set()
    unique = []
    for cue in sorted(cues, key=_cue_start):
        first, _, rest = cue.partition("\n")
        if not _TIMING.fullmatch(first) and first in named:
            cue = rest
        named.add(first)
        unique.append(cue)
    return unique


def _cue_start(cue: str) -> int:
    """When a cue ``_cue_block`` wrote starts, in milliseconds."""
    start = re.search(r"^\S+(?= --> )", cue, re.MULTILINE)
    return _millis(start[0]) if start else 0


def to_webvtt(data: bytes, fmt: str, *, binary: str, timeout: float) -> str:
    """A sidecar's bytes (``fmt`` "srt" or "vtt") as normalised WebVTT text.

    Raises ``SubtitleError`` for input a user must fix (too large, not UTF-8, binary,
    empty, a cue time out of range or backwards, no cues) and ``TranscodeInterruptedError``
    if ffmpeg runs out of time.
    """
    if fmt not in DEMUXER_FOR_FORMAT:
        raise ValueError(f"subtitle format {fmt!r} is not one of {SIDECAR_FORMATS}")
    text = _subtitle_text(data, fmt)
    _check_cue_times(text)
    if fmt == "srt":
        _check_cue_lengths(text)
    else:
        text = _header_ended(text)
    with tempfile.TemporaryDirectory(prefix="vidflow-subs-") as scratch:
        source = Path(scratch) / f"in.{fmt}"
        target = Path(scratch) / "out.vtt"
        source.write_text(text, encoding="utf-8")
        try:
            run_ffmpeg(build_webvtt_command(source, fmt, target, binary=binary), timeout)
        except TranscodeError as error:
            raise SubtitleError(f"the subtitle file cannot be read: {error}") from None
        written = target.read_text(encoding="utf-8", errors="replace") if target.exists() else ""
    cues = _reserialise(written)
    if not cues:
        example = (
            "00:00:01,000 --> 00:00:02,500" if fmt == "srt" else "00:00:01.000 --> 00:00:02.500"
        )
        raise SubtitleError(f"the subtitle file has no cues (timed lines like {example})")
    return "WEBVTT\n\n" + "\n\n".join(cues) + "\n"


_INLINE_TIME = re.compile(r"<((?:\d+:)?\d{2}:\d{2}\.\d{3})>", re.ASCII)


def _millis(text: str) -> int:
    *hours, minutes, seconds = text.split(":")
    whole, fraction = seconds.split(".")
    return ((int(hours[0] if hours else 0) * 60 + int(minutes)) * 60 + int(whole)) * 1000 + int(
        fraction
    )


def webvtt_time(millis: int) -> str:
    """A WebVTT timestamp, hours always written (``00:01:02.500``)."""
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    return f"{hours:02d}:{minutes:02d}:{millis // 1000:02d}.{millis % 1000:03d}"


def shifted(vtt: str, seconds: float) -> str:
    """``vtt`` (as ``to_webvtt`` writes it) with every cue ``seconds`` earlier, to the
    millisecond.

    A sidecar is timed on its source's own timeline, whose zero is the file's start; the
    published timeline starts at the video's first frame, which may come later (a video
    track that starts after its audio, an MP4's leading empty edit). A cue that ends by
    the new zero is dropped, one that straddles it starts at zero, and an inline
    timestamp that no longer falls inside its cue is removed.
    """
    if seconds < 0:
        raise ValueError(f"cannot shift cues {seconds} s later")
    shift = round(seconds * 1000)
    if shift == 0:
        return vtt
    header, _, body = vtt.partition("\n\n")
    body = body.strip("\n")
    kept = []
    for block in body.split("\n\n") if body.strip() else []:
        lines = block.split("\n")
        found = _timing_line(lines)
        if found is None:
            kept.append(block)
            continue
        at, timing = found
        start = max(0, _millis(timing["start"]) - shift)
        end = _millis(timing["end"]) - shift
        if end <= start:
            continue

        def moved(match: re.Match[str], start: int = start, end: int = end) -> str:
            time = _millis(match[1]) - shift
            return f"<{webvtt_time(time)}>" if start < time < end else ""

        lines[at] = " ".join(
            [webvtt_time(start), "-->", webvtt_time(end), *(timing["settings"] or "").split()]
        )
        lines[at + 1 :] = [_INLINE_TIME.sub(moved, line) for line in lines[at + 1 :]]
        kept.append("\n".join(lines))
    return header + "\n\n" + "\n\n".join(kept) + ("\n" if kept else "")


def with_timestamp_map(vtt: str, mpegts: int) -> str:
    """``vtt`` with an ``X-TIMESTAMP-MAP`` header mapping cue time 0 to 90 kHz PTS ``mpegts``.

    HLS players place WebVTT cues on the video's timeline through this map; without it
    cue time 0 is media time 0, not the first frame. Any earlier map is replaced. A time
    past the 33-bit wrap is written as an MPEG-TS muxer writes it: modulo 2**33.
    """
    if mpegts < 0:
        raise ValueError(f"MPEGTS {mpegts} is before any timestamp")
    mpegts %= 2**33
    header, separator, body = vtt.partition("\n\n")
    lines = header.split("\n")
    if not lines[0].startswith("WEBVTT"):
        raise ValueError("not WebVTT text: the first line must start with WEBVTT")
    kept = [line for line in lines[1:] if not line.startswith("X-TIMESTAMP-MAP=")]
    mapping = f"X-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000"
    header = "\n".join([lines[0], mapping, *kept])
    return f"{header}\n\n{body}" if separator else f"{header}\n"

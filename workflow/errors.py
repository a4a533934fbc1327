"""The workflow's error vocabulary.

Each class name is the ASL error name a state machine sees (the local engine and AWS
Lambda both report a raised exception's class name as ``errorType``), and each message
is the one line a user reads. Input errors are permanent: the state machine catches
them and fails the job. ``TransientError`` subclasses are retried with backoff.
"""

from __future__ import annotations


class VidflowError(Exception):
    """Root of every error vidflow raises on purpose."""

    transient = False

    @property
    def name(self) -> str:
        return type(self).__name__


class ConfigurationError(VidflowError):
    """A setting in the function's environment is missing or malformed."""


class EventError(VidflowError):
    """A function's event is not of the shape that function takes (hand-made, edited for
    a redrive, or from another source): a field missing, of another kind, or naming no
    job or stream. Nothing is read or written; the error names the field."""


class InputError(VidflowError):
    """The upload itself is unusable; the user must fix it and upload again."""


class NotAVideoError(InputError):
    """The bytes are not a video container vidflow can read."""


class TruncatedInputError(InputError):
    """The file starts like a video but its data ends early or is damaged."""


class NoVideoStreamError(InputError):
    """The container holds no video stream (audio only, data only, empty)."""


class UnsupportedInputError(InputError):
    """A video vidflow recognises but will not process (codec, container, layout)."""


class InputTooLargeError(InputError):
    """The upload exceeds a configured bound on bytes, pixels, frame rate or streams."""


class InputTooLongError(InputError):
    """The upload's duration exceeds the configured bound."""


class UnsafeInputError(InputError):
    """The upload would make ffmpeg open another file or URL (playlist, concat list, ...)."""


class ArchivedInputError(InputError):
    """The upload is in an archive storage class (Glacier Flexible Retrieval, Deep
    Archive, an Intelligent-Tiering archive tier): S3 serves none of its bytes until it
    is restored."""


class EncryptedInputError(InputError):
    """The upload is encrypted with a key the stack may not use: one its uploader keeps
    (SSE-C), which S3 keeps no copy of, or a KMS key (SSE-KMS) its roles may not decrypt
    with."""


class SourceChangedError(InputError):
    """The upload was replaced or deleted while its job ran; the job stops and publishes
    nothing, and the new upload's own job publishes it."""


class StreamConfigError(InputError):
    """``live/<stream>/stream.json`` is not a stream configuration vidflow can use."""


class SegmentTooLongError(InputError):
    """A live segment is longer than its stream's target duration, which a live playlist
    may never change (RFC 8216): the encoder must cut shorter segments."""


class SegmentStartsMidGopError(InputError):
    """A live segment starts with frames that refer to pictures in the file before it (cut
    between the encoder's keyframes, by the clock or by bytes): each segment is encoded
    alone, so they could not be shown, and the encoder must cut at its keyframes."""


class SequenceJumpError(InputError):
    """A live segment is numbered further past the stream's last one shown than an
    outage could skip (``rules.MAX_SKIPPED``): a broken or restarted counter."""


class SequenceBeforeStartError(InputError):
    """A live segment is numbered below the first its stream shows (its ``stream.json``'s
    ``first_sequence``, or where the stream started): it would be shown nowhere."""


class SegmentReusedError(InputError):
    """A live segment's number was published already from other bytes: a restarted
    encoder counting from 0 again, or a segment sent again after it was changed."""


class SegmentClaimedError(VidflowError):
    """A live segment's files are held by another upload's claim whose attempt failed
    (the claim runs out a few minutes later): the upload is started again after it."""


class StreamEndedError(InputError):
    """A live segment is numbered past its stream's end marker: the stream's playlists
    and recording are final, so it would be published nowhere."""


class ClipRequestError(InputError):
    """A clip request is not ``{"from": seconds, "to": seconds}`` with a sensible span."""


class ClipRangeError(InputError):
    """A clip's span is not (yet) published in its stream: past the live edge, before
    the stream's start, or across a gap."""


class ClipSupersededError(VidflowError):
    """The same clip name was asked for again while this request was being made: the
    newer request's clip is the one published."""


class MissingInitSegmentError(InputError):
    """An fMP4 live segment arrived before (or without) its stream's ``init.mp4``."""


class InitSegmentMismatchError(InputError):
    """An fMP4 live segment fits behind none of its stream's ``init.mp4`` uploads: it
    was made by an encoder run whose init segment is not (yet) uploaded."""


class UploadOptionError(InputError):
    """An upload asked, in its S3 metadata, for an option vidflow does not have."""


class SubtitleError(InputError):
    """A sidecar subtitle file is unusable (not UTF-8 text, no cues, too large)."""


class StreamNotReadyError(VidflowError):
    """A live step ran before the stream's settings were stored (its probe did not run)."""


class TranscodeError(VidflowError):
    """ffmpeg ran and failed on this input; retrying would fail the same way."""


class IncompleteOutputError(VidflowError):
    """Publishing found work items without a recorded result; nothing was published."""


class MissingJobRecordError(VidflowError):
    """A step found no record of the earlier step it follows: that step has not run for
    this job, or the job has ended and removed its records."""


class TransientError(VidflowError):
    """A failure worth retrying: throttling, a storage 5xx, an interrupted encoder."""

    transient = True


class TranscodeInterruptedError(TransientError):
    """ffmpeg was killed or ran out of time before it finished."""


class EventNotSentError(TransientError):
    """The bus refused an event (throttled or unavailable); the step is retried."""

"""CloudFront signed requests for the optional CDN (``PlaybackCdn=cloudfront`` with
``CdnPublicKey``): a custom policy over an asset's whole folder, so one signature lets a
player fetch its playlists and segments, signed with the key pair's private key.

botocore's ``CloudFrontSigner`` builds and encodes the policy; this module gives it an
RSA signer (which folder an asset lives in is ``vidflow sign``'s to say).
"""

from __future__ import annotations

from datetime import UTC, datetime

from botocore.signers import CloudFrontSigner
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa


class CdnKeyError(ValueError):
    """The CDN signing key is not an unencrypted RSA private key in PEM."""


def signed_query(
    url: str, folder_url: str, key_id: str, private_pem: bytes, expires_at: float
) -> str:
    """``url`` with CloudFront's ``Policy``, ``Signature`` and ``Key-Pair-Id`` for every
    object under ``folder_url`` until ``expires_at`` (epoch seconds)."""
    try:
        private = serialization.load_pem_private_key(private_pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CdnKeyError(f"the CDN private key is not an unencrypted PEM key: {exc}") from None
    if not isinstance(private, rsa.RSAPrivateKey):
        raise CdnKeyError("the CDN private key must be RSA (CloudFront key groups take RSA)")

    def sign(message: bytes) -> bytes:
        # CloudFront verifies SHA-1 RSA signatures (its documented scheme for key groups).
        return private.sign(message, padding.PKCS1v15(), hashes.SHA1())

    signer = CloudFrontSigner(key_id, sign)
    policy = signer.build_policy(
        f"{folder_url.rstrip('/')}/*", datetime.fromtimestamp(expires_at, UTC)
    )
    signed: str = signer.generate_presigned_url(url, policy=policy)
    return signed

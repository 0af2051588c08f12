"""Errors raised by fingerprint/.

FingerprintError                 catch-all
├── IncompatibleSignaturesError  signatures made with different k / window / seed / version
├── SignatureFormatError         bytes that are not a signature of a version we read
└── DeviceUnavailableError       device="cuda" asked for, but torch sees no GPU
"""

from __future__ import annotations


class FingerprintError(Exception):
    pass


class IncompatibleSignaturesError(FingerprintError):
    pass


class SignatureFormatError(FingerprintError):
    pass


class DeviceUnavailableError(FingerprintError):
    pass

"""schemathesis hooks for ``make fuzz`` (tests/fuzz.py): pack archives are sent as bytes."""

from __future__ import annotations

import schemathesis

schemathesis.serializer.alias(["application/gzip", "application/zip"], "application/octet-stream")

"""Helpers shared by the fixture generators in this folder."""
import hashlib


def sha256(path):
    """The sha256 of a file, read in 1 MiB chunks (quantized models are hundreds of MB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

"""Stored files (evidence, the issuer's images): written whole or not at all."""
import os
from pathlib import Path


def write_new(path: Path, data: bytes) -> None:
    """Write `data` to `path`, a new file, through a partial file renamed into place: a reader
    never sees half a file, and an existing name is never overwritten by the partial."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".part")
    with open(temporary, "xb") as f:
        f.write(data)
    os.replace(temporary, path)

"""What the tests of the official documents share: a seal they can find in a PDF, and each
test's own folder of stored files (the issuer's images outlive a rolled-back transaction)."""
import io

import pytest
from PIL import Image


def seal_png() -> bytes:
    """A red ring of 120 × 120 pixels: a seal the test finds in the PDF as an image."""
    picture = Image.new("RGBA", (120, 120), (0, 0, 0, 0))
    for x in range(120):
        for y in range(120):
            if 2900 < (x - 60) ** 2 + (y - 60) ** 2 < 3500:
                picture.putpixel((x, y), (200, 30, 30, 230))
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def own_upload_root(app, tmp_path, monkeypatch):
    """The issuer's logo and seal are files: each test stores its own."""
    monkeypatch.setitem(app.config, "UPLOAD_ROOT", str(tmp_path))

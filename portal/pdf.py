"""PDF rendering with WeasyPrint: project fonts only, no file: or network fetches."""
import atexit
import gc
import mimetypes
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

from flask import render_template
from flask_babel import force_locale
from weasyprint import HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher, URLFetcherResponse

from portal.config import PROJECT_ROOT

# The only files a PDF may load: the CJK font and the print stylesheet shipped with the portal.
PDF_ASSETS = PROJECT_ROOT / "portal" / "static" / "pdf"
CJK_FONT_CANDIDATES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
)


def cjk_font_path() -> Path | None:
    return next((p for p in CJK_FONT_CANDIDATES if p.exists()), None)


def _allowed(path: Path) -> bool:
    font = cjk_font_path()
    resolved = path.resolve()
    return (font is not None and resolved == font.resolve()) or resolved.is_relative_to(
        PDF_ASSETS.resolve()
    )


class PortalAssetFetcher(URLFetcher):
    """Refuse every URL except the portal's own PDF assets and the CJK font.

    User text that names an image or stylesheet (file:, http:, data: tricks) loads nothing.
    """

    refused: list[str]

    def __init__(self, images: dict[str, tuple[bytes, str]] | None = None):
        super().__init__(allowed_protocols=("file",), allow_redirects=False)
        self.refused = []
        self.images = images or {}

    def fetch(self, url, headers=None):
        if url.startswith(IMAGE_SCHEME) and url[len(IMAGE_SCHEME):] in self.images:
            body, content_type = self.images[url[len(IMAGE_SCHEME):]]
            return URLFetcherResponse(url, body=body, headers={"Content-Type": content_type})
        parsed = urlparse(url)
        path = Path(unquote(parsed.path))
        if parsed.scheme != "file" or not _allowed(path):
            self.refused.append(url)
            raise ValueError(f"refused to fetch {url!r} in a PDF")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(url, body=path.read_bytes(),
                                  headers={"Content-Type": content_type})


# Images handed to one rendering by the caller (the issuer's logo and seal): a template names
# them "portal-image:<name>", and no other URL of that scheme loads.
IMAGE_SCHEME = "portal-image:"

_fonts = threading.local()


@atexit.register
def _release_fonts() -> None:
    """Free the main thread's font configuration while the interpreter is still whole.

    Left to the interpreter's teardown, the thread-local is freed after the modules it needs,
    and its cffi finalizer calls Pango's g_object_unref on a dead font map: a segmentation
    fault on the way out of every command that rendered a PDF (`flask setup` exited 139
    after committing the demo, so `make run` stopped)."""
    if getattr(_fonts, "config", None) is not None:
        del _fonts.config
        gc.collect()


def _font_config() -> FontConfiguration:
    """One font configuration per thread: building one copies and registers the 5 MB CJK font
    each time, and Pango's font maps must not be shared between threads."""
    config = getattr(_fonts, "config", None)
    if config is None:
        config = _fonts.config = FontConfiguration()
    return config


def render_pdf(template: str, *, locale: str, images: dict[str, tuple[bytes, str]] | None = None,
               **context) -> bytes:
    """Render `template` (fed plain values, not ORM objects) to PDF bytes in `locale`.

    `images`: {name: (bytes, content type)} the template may show as "portal-image:<name>"."""
    font = cjk_font_path()
    with force_locale(locale):
        html = render_template(
            template, cjk_font_url=font.as_uri() if font else None,
            pdf_css_url=(PDF_ASSETS / "print.css").as_uri(), **context
        )
    return HTML(string=html, base_url=None, url_fetcher=PortalAssetFetcher(images)).write_pdf(
        font_config=_font_config())

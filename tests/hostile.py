"""Discover the forms of the running app and the values an attacker or a careless user sends.

Used by tests/test_hostile_input.py: a crawler signs in as a role, follows same-site links
from the home page and the navigation, and collects every POST form with its fields.
"""
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

HOSTILE_TEXT = [
    "", " ", "x" * 5000, "-1", "0", "-0.01", "99999999999999999999", "1e309", "NaN",
    "<script>alert('x')</script>", "'; DROP TABLE users;--", "\x00", "2999-12-31",
    "0000-00-00", "../../etc/passwd", "１２３", "😀" * 10, "%(name)s", "{{7*7}}",
]
# Choice fields refuse anything outside their options the same way: a few values suffice.
HOSTILE_CHOICES = ["", "-1", "99999999999999999999", "<script>", "x" * 300]


@dataclass
class Form:
    page: str
    action: str
    fields: dict = field(default_factory=dict)     # name -> default value
    choices: dict = field(default_factory=dict)    # name -> [option values]
    multi: set = field(default_factory=set)        # names that take several values
    files: set = field(default_factory=set)


class _FormParser(HTMLParser):
    def __init__(self, page):
        super().__init__(convert_charrefs=True)
        self.page = page
        self.forms: list[Form] = []
        self.links: set[str] = set()
        self._form = None
        self._select = None
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("href"):
            self.links.add(a["href"])
        elif tag == "form" and (a.get("method") or "get").lower() == "post":
            self._form = Form(self.page, urljoin(self.page, a.get("action") or self.page))
        elif self._form is None:
            return
        elif tag == "input" and a.get("name"):
            kind = (a.get("type") or "text").lower()
            name = a["name"]
            if kind == "file":
                self._form.files.add(name)
            elif kind in ("checkbox", "radio"):
                self._form.choices.setdefault(name, []).append(a.get("value", "y"))
                if kind == "checkbox":
                    self._form.multi.add(name)
                if "checked" in a:
                    self._form.fields[name] = a.get("value", "y")
            elif kind not in ("submit", "button", "reset", "image"):
                self._form.fields.setdefault(name, a.get("value", ""))
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
            if "multiple" in a:
                self._form.multi.add(a["name"])
        elif tag == "option" and self._select:
            self._form.choices.setdefault(self._select, []).append(a.get("value", ""))
            if "selected" in a or self._select not in self._form.fields:
                self._form.fields[self._select] = a.get("value", "")
        elif tag == "textarea" and a.get("name"):
            self._textarea = a["name"]
            self._form.fields.setdefault(a["name"], "")
        elif tag == "button" and a.get("name") and a.get("value") is not None:
            self._form.fields.setdefault(a["name"], a["value"])

    def handle_data(self, data):
        if self._form is not None and self._textarea:
            self._form.fields[self._textarea] += data

    def handle_endtag(self, tag):
        if tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


SKIP_ACTIONS = re.compile(r"/auth/sign-out|/locale$")


def crawl(client, start_paths, *, max_pages=150) -> tuple[list[Form], list[str]]:
    """Forms reachable from `start_paths` by following same-site GET links."""
    seen, queue, forms, pages = set(), list(start_paths), {}, []
    while queue and len(seen) < max_pages:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.add(path)
        response = client.get(path)
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        pages.append(path)
        parser = _FormParser(path)
        parser.feed(response.get_data(as_text=True))
        for form in parser.forms:
            action = urlsplit(form.action).path
            if SKIP_ACTIONS.search(action):
                continue
            key = (re.sub(r"/\d+", "/N", action), tuple(sorted(form.fields)))
            forms.setdefault(key, form)
        for link in parser.links:
            parts = urlsplit(urljoin(path, link))
            if parts.netloc not in ("", "portal.test") or not parts.path.startswith("/"):
                continue
            if parts.path.endswith((".csv", ".xlsx", ".pdf", ".json", ".svg", ".png")):
                continue
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            if parts.query and "page=" in parts.query:
                continue  # paging and sorting add no new forms
            if target not in seen:
                queue.append(target)
    return list(forms.values()), pages

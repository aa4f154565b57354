"""Write the README's launch links from ``binder/links.toml``: ``python scripts/make_links.py``.

The links sit between the README's ``<!-- launch-links -->`` and ``<!-- /launch-links -->``
markers; ``--check`` only reports whether they are up to date (exit status 1 when not).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
TABLE = REPO / "binder" / "links.toml"
README = REPO / "README.md"
START, END = "<!-- launch-links -->", "<!-- /launch-links -->"
URLPATHS = {"lab": "lab/tree/{notebook}", "voila": "voila/render/{notebook}"}


def launch_url(table: dict, link: dict) -> str:
    """The mybinder.org URL that opens ``link["notebook"]`` in ``link["interface"]``."""
    urlpath = URLPATHS[link["interface"]].format(notebook=link["notebook"])
    return f"https://mybinder.org/v2/gh/{table['owner']}/{table['name']}/{table['ref']}?urlpath={urlpath}"


def links_block(table: dict) -> str:
    """The README's launch-links block: one line per link, then who the owner is."""
    lines = [START]
    for link in table["links"]:
        url = launch_url(table, link)
        lines.append(f"- [{link['label']}]({url})")
    lines.append("")
    lines.append(
        "Give students the first link: Binder builds their notebooks (every solution replaced by a stub) "
        "when it builds the image. The Voila dashboard hides the exercises: a dashboard shows no code."
    )
    if table["owner"] == "OWNER":
        lines.append(
            "**Before sharing these links**, set `owner` in `binder/links.toml` to the GitHub account that "
            "hosts your copy of this repository and run `python scripts/make_links.py`: `OWNER` is a placeholder."
        )
    lines.append(END)
    return "\n".join(lines)


def read_table() -> dict:
    return tomllib.loads(TABLE.read_text())


def updated_readme(readme: str, table: dict) -> str:
    before, rest = readme.split(START, 1)
    _, after = rest.split(END, 1)
    return before + links_block(table) + after


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only check that the README is up to date")
    args = parser.parse_args(argv)
    readme = README.read_text()
    updated = updated_readme(readme, read_table())
    if args.check:
        print("up to date" if updated == readme else "README.md's launch links differ from binder/links.toml")
        return int(updated != readme)
    README.write_text(updated)
    print("wrote the launch links into", README)
    return 0


if __name__ == "__main__":
    sys.exit(main())

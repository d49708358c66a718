"""Code, configs and the README point to the measurements behind a setting by section title (``docs/benchmarks.md,
"Title"``, and the README's index table). Every such title exists, so a renamed or moved section shows here."""

from __future__ import annotations

import re
from pathlib import Path

from e2t_al.data.paths import PROJECT_ROOT

BENCHMARKS = PROJECT_ROOT / "docs" / "benchmarks.md"
REFERRING = ["e2t_al", "configs", "flows", "db", "README.md"]
REFERENCE = re.compile(r'docs/benchmarks\.md,((?:\s*(?:"[^"]+"|,|and))+)')


def section_titles(markdown: str) -> set[str]:
    """Headings, and the bold words that open a paragraph (``**The head's kernel** (...)``), without a final period."""
    titles = {line.lstrip("#").strip() for line in markdown.splitlines() if line.startswith("#")}
    titles |= {m.group(1).rstrip(".") for m in re.finditer(r"^\*\*(.+?)\*\*", markdown, flags=re.MULTILINE)}
    return {" ".join(t.replace("`", "").split()) for t in titles}


def flowing_text(path: Path) -> str:
    """The file's lines joined with comment markers and indentation dropped, so a title broken across comment lines
    reads as one."""
    return " ".join(re.sub(r"^\s*#?\s*", "", line) for line in path.read_text().splitlines())


def references(text: str) -> list[str]:
    return [" ".join(title.split()) for m in REFERENCE.finditer(text) for title in re.findall(r'"([^"]+)"', m.group(1))]


def index_table_references(readme: str) -> list[str]:
    """The last column of the README's "Settings and the evidence for them" table, titles separated by ';'."""
    section = readme.split("## Settings and the evidence for them", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [title.strip() for row in rows for title in row.rstrip(" |").rsplit("|", 1)[1].split(";")
            if not title.strip().startswith("this README")]


def referring_files() -> list[Path]:
    files = []
    for name in REFERRING:
        path = PROJECT_ROOT / name
        files += [p for p in path.rglob("*") if p.suffix in {".py", ".yaml", ".md"}] if path.is_dir() else [path]
    return files


def test_every_referenced_section_of_the_benchmarks_doc_exists():
    titles = section_titles(BENCHMARKS.read_text())
    found = {path.relative_to(PROJECT_ROOT).as_posix(): references(flowing_text(path)) for path in referring_files()}
    found["README.md (index table)"] = index_table_references((PROJECT_ROOT / "README.md").read_text())
    assert sum(len(v) for v in found.values()) >= 20  # the pattern still finds the references
    missing = sorted(f"{where}: {title!r}" for where, found_titles in found.items() for title in found_titles
                     if title not in titles)
    assert not missing, missing


def test_the_reference_reader_finds_titles_across_comment_lines(tmp_path):
    source = tmp_path / "example.py"
    source.write_text('    # the figures (docs/benchmarks.md, "Two exploitation places" and "The whole batch\n'
                      '    # for exploitation"). More text "not a title".\n')
    assert references(flowing_text(source)) == ["Two exploitation places", "The whole batch for exploitation"]
    assert section_titles("**Batch sizes other than 4.** The default\n## Heading\ntext **not** a title") == {
        "Batch sizes other than 4", "Heading"}

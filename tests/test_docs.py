"""The docs say what the code does: families, settings, modules and contract references."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from exporter.app.settings import described
from exporter.health.state import ErrorKind
from exporter.metrics.registry import ALL, GROUPS
from tests.docs import DOCS, ROOT, code_spans, section, table_rows
from tests.world import every_family

EXPORTER = ROOT / "exporter"


def documented_families() -> dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]]:
    """Family name -> (identity of its table, type, own labels), from docs/metrics.md."""
    out: dict[str, tuple[tuple[str, ...], str, tuple[str, ...]]] = {}
    identity: tuple[str, ...] = ()
    for line in (DOCS / "metrics.md").read_text().splitlines():
        if line.startswith("Identity:"):
            identity = tuple(code_spans(line))
        elif line.startswith("| `kube_batch_"):
            (cells,) = table_rows(line)
            (name,) = code_spans(cells[0])
            assert name not in out, f"{name} is documented twice"
            out[name] = (identity, cells[1], tuple(code_spans(cells[2])))
    return out


def test_metrics_md_lists_exactly_the_registered_families() -> None:
    documented = documented_families()
    registered = {f.name: (f.identity, f.type, f.labels) for f in ALL}
    assert documented == registered


def test_the_registry_declares_the_labels_its_families_generate() -> None:
    w = every_family()
    declared = {f.name: {*f.identity, *f.labels} for f in ALL}
    seen = set()
    for name, labels in w.series(*GROUPS):
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        family = family if family in declared else name
        assert {k for k, _ in labels} - {"le"} == declared[family], name
        seen.add(family)
    assert seen == {f.name for group in GROUPS for f in group.all}


def test_architecture_names_every_module() -> None:
    text = (DOCS / "architecture.md").read_text()
    for path in sorted(EXPORTER.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        rel = path.relative_to(EXPORTER)
        name = f"exporter/{rel}" if len(rel.parts) == 1 else str(rel)
        assert name in text, f"docs/architecture.md does not mention {name}"


def contract_references() -> list[tuple[Path, int]]:
    refs = []
    for path in [*EXPORTER.rglob("*.py"), *DOCS.glob("*.md"), ROOT / "README.md"]:
        for number in re.findall(r"§(\d+)", path.read_text()):
            refs.append((path, int(number)))
    return refs


def test_every_contract_reference_resolves_inside_the_repository() -> None:
    refs = contract_references()
    assert len(refs) > 10
    headings = set(re.findall(r"^## (\d+)\. ", (DOCS / "contract.md").read_text(), re.MULTILINE))
    for path, number in refs:
        assert str(number) in headings, f"{path}: docs/contract.md has no section {number}"
    for path in [*EXPORTER.rglob("*.py"), *DOCS.glob("*.md"), ROOT / "README.md"]:
        assert "../shared" not in path.read_text(), f"{path} points outside the repository"


def test_the_contract_lists_exactly_the_settings_with_their_defaults() -> None:
    rows = table_rows(section(DOCS / "contract.md", 7))
    flags = [code_spans(cells[0])[0].split()[0] for cells in rows]
    settings = described()
    assert flags == [s.flag for s in settings]
    for cells, s in zip(rows, settings, strict=True):
        if s.default is not None:
            assert code_spans(cells[1]) == [s.default], s.flag


def test_the_contract_lists_exactly_the_error_kinds() -> None:
    rows = table_rows(section(DOCS / "contract.md", 6))
    assert [code_spans(cells[0])[0] for cells in rows] == [str(kind) for kind in ErrorKind]


def test_the_readme_flags_are_settings_with_the_same_defaults() -> None:
    text = (ROOT / "README.md").read_text()
    config = text[text.index("## Configuration") :].split("\n## ")[0]
    settings = {s.flag: s for s in described()}
    rows = table_rows(config)
    assert rows
    for cells in rows:
        flag = code_spans(cells[0])[0].split()[0]
        assert flag in settings, f"README documents {flag}, which does not exist"
        default = settings[flag].default
        if default is not None:
            assert code_spans(cells[1]) == [default], flag


@pytest.mark.parametrize("doc", ["contract.md", "metrics.md", "architecture.md"])
def test_docs_do_not_point_at_modules_that_are_gone(doc: str) -> None:
    text = (DOCS / doc).read_text()
    for name in re.findall(r"`(?:exporter/)?([a-z]+/[a-z_]+\.py)`", text):
        candidates = [EXPORTER / name, ROOT / name]
        assert any(c.exists() for c in candidates), f"{doc} names {name}, which does not exist"

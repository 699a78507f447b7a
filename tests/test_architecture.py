"""The module graph of ``src/foresize`` has no import cycles.

Every import counts, those inside functions (lazy) and under ``TYPE_CHECKING`` too: a
lazy import that closes a loop still ties two modules together, and such loops are how
the stages' layers start to blur. Break a cycle by moving the piece both sides need down
into a module that imports neither.
"""

from __future__ import annotations

import grimp


def import_cycles(package: str) -> list[frozenset[str]]:
    """The import cycles among the modules of ``package``."""
    graph = grimp.build_graph(package)
    return cycles({m: sorted(graph.find_modules_directly_imported_by(m)) for m in graph.modules})


def cycles(edges: dict[str, list[str]]) -> list[frozenset[str]]:
    """Strongly connected components of two or more nodes (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


def test_cycle_finder_sees_a_loop_and_a_clean_chain() -> None:
    edges = {"a": ["b"], "b": ["c"], "c": ["a", "d"], "d": ["e"], "e": []}
    assert cycles(edges) == [frozenset({"a", "b", "c"})]
    assert cycles({"a": ["b"], "b": []}) == []


def test_no_import_cycles() -> None:
    found = [sorted(c) for c in import_cycles("foresize")]
    assert not found, f"import cycles: {found}"

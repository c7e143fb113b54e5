"""Parents-first ordering of Salesforce objects, with the cycle named when there is one."""

from __future__ import annotations

from collections.abc import Mapping


class CycleError(ValueError):
    """The parent links form a cycle; `cycle` lists it with the first object repeated at the end."""

    def __init__(self, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__("parent links form a cycle: " + " -> ".join(cycle))


def parents_first(parents: Mapping[str, set[str]]) -> list[str]:
    """Every object (keys and the parents they name) ordered so that each comes after all of its parents.

    Ties keep alphabetical order so the result is stable. Raises `CycleError` naming the objects of a cycle
    (a self-link is a cycle of one: its parent would have to exist before itself within one load).
    """
    nodes = sorted(set(parents) | {p for ps in parents.values() for p in ps})
    order: list[str] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = placed
    path: list[str] = []

    def visit(node: str) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            start = path.index(node)
            raise CycleError(path[start:] + [node])
        state[node] = 1
        path.append(node)
        for parent in sorted(parents.get(node, ())):
            visit(parent)
        path.pop()
        state[node] = 2
        order.append(node)

    for node in nodes:
        visit(node)
    return order

"""Exact rational geometry of Newton polyhedra P = conv(A) + R^d_{≥0}, A ⊂ N^d.

Everything is computed in :class:`fractions.Fraction`, never in floating point.

The learning coefficient of a non-degenerate potential is read off the linear programme
λ = min{⟨h + 1, c⟩ : c ≥ 0, ⟨α, c⟩ ≥ 1 for every α ∈ A}, whose feasible set D is the polar
companion of P: the vertices of D are the normals of the facets of P that miss the origin.
The LP is solved by enumerating the vertices of D (D is pointed and the objective is positive
on its recession cone R^d_{≥0}, so the optimum is a vertex and the optimal face is bounded).
"""

from __future__ import annotations

import math

from fractions import Fraction
from itertools import combinations
from typing import Iterable, Sequence

import numpy as np

Point = tuple[int, ...]
Vector = tuple[Fraction, ...]


def dot(u: Sequence, v: Sequence):
    return sum(a * b for a, b in zip(u, v))


def row_echelon(rows: Iterable[Sequence]) -> list[list[Fraction]]:
    """Reduced row echelon form of a rational matrix (zero rows dropped)."""
    matrix = [[Fraction(x) for x in row] for row in rows]
    reduced: list[list[Fraction]] = []
    width = len(matrix[0]) if matrix else 0
    for col in range(width):
        pivot = next((r for r in matrix if r[col] != 0), None)
        if pivot is None:
            continue
        matrix.remove(pivot)
        pivot = [x / pivot[col] for x in pivot]
        matrix = [[x - r[col] * p for x, p in zip(r, pivot)] for r in matrix]
        reduced = [[x - r[col] * p for x, p in zip(r, pivot)] for r in reduced] + [pivot]
    return reduced


def affine_dimension(points: Sequence[Sequence]) -> int:
    """Dimension of the affine hull of a non-empty set of points."""
    base = points[0]
    return len(row_echelon([[a - b for a, b in zip(p, base)] for p in points[1:]])) if len(points) > 1 else 0


def solve_square(rows: Sequence[Sequence], rhs: Sequence) -> Vector | None:
    """The unique solution of rows · x = rhs, or None if the system is singular."""
    reduced = row_echelon([list(r) + [b] for r, b in zip(rows, rhs)])
    d = len(rows[0])
    if len(reduced) != d or any(all(x == 0 for x in r[:d]) for r in reduced):
        return None
    return tuple(row[d] for row in reduced)  # pivots come out in column order


def minimal_points(points: Iterable[Point]) -> list[Point]:
    """Points not dominated coordinatewise by another: only these matter for P's shape."""
    points = sorted(set(points))
    return [a for a in points if not any(b != a and all(x <= y for x, y in zip(b, a)) for b in points)]


MAX_BASES = 5_000_000   # candidate vertices (choices of d of the constraints) dual_vertices enumerates at most


def dual_vertices(points: Iterable[Point]) -> list[Vector]:
    """Vertices of D = {c ≥ 0 : ⟨α, c⟩ ≥ 1 for α in points}, exactly.

    Every choice of d constraints is a candidate basis. A floating-point solve, batched over
    ``SCREEN_CHUNK`` numbers at a time, screens out the singular and clearly infeasible ones
    (integer matrices: a determinant below 1/2 in size is exactly 0); each survivor is solved and
    checked in exact rationals, so the screen only saves time and never decides the answer. A
    survivor whose constraints are all tight, exactly, at a vertex already found is that vertex
    (a regular system has one solution) and is not solved again: where many points share a face,
    as the 1,001 terms of (x + y)^1000 do, most bases name the same vertex.
    """
    support = minimal_points(points)
    d = len(support[0])
    integer_rows = [tuple(a) for a in support] + [tuple(int(i == j) for j in range(d)) for i in range(d)]
    integer_rhs = [1] * len(support) + [0] * d
    rows, rhs = np.array(integer_rows, dtype=float), np.array(integer_rhs, dtype=float)
    if math.comb(len(rows), d) > MAX_BASES:
        raise ValueError(f"the Newton polyhedron of {len(support)} points in {d} variables has "
                         f"{math.comb(len(rows), d):.3g} candidate vertices, more than the {MAX_BASES:,} this exact "
                         "enumeration takes in about a minute (a sum of 12 squares has 2.7e+06 and takes about 13 s)")
    bases = np.array(list(combinations(range(len(rows)), d)))
    tight_at: dict[Vector, frozenset[int]] = {}
    for chunk in np.array_split(bases, max(1, len(bases) * len(rows) // SCREEN_CHUNK)):
        for basis in _screened(chunk, rows, rhs, len(support)):
            chosen = set(basis)
            if any(chosen <= tight for tight in tight_at.values()):
                continue
            c = solve_square([integer_rows[i] for i in basis], [integer_rhs[i] for i in basis])
            if c is not None and min(c) >= 0 and all(dot(alpha, c) >= 1 for alpha in support):
                tight_at[c] = frozenset(i for i, row in enumerate(integer_rows) if dot(row, c) == integer_rhs[i])
    return sorted(tight_at)


SCREEN_CHUNK = 10_000_000   # floating-point numbers one batch of the screen holds (80 MB)


def _screened(bases: np.ndarray, rows: np.ndarray, rhs: np.ndarray, points: int) -> list[list[int]]:
    """The bases whose floating-point solution is regular and, within rounding, feasible."""
    matrices = rows[bases]
    regular = np.abs(np.linalg.det(matrices)) > 0.5
    bases, matrices = bases[regular], matrices[regular]
    solutions = np.linalg.solve(matrices, rhs[bases][..., None])[..., 0]
    slack = 1e-6 * (1 + np.abs(solutions).max(axis=1))
    feasible = (solutions.min(axis=1) >= -slack) & ((solutions @ rows[:points].T).min(axis=1) >= 1 - slack)
    return bases[feasible].tolist()


def newton_distance(vertices: Sequence[Vector], weights: Sequence) -> tuple[Fraction, list[Vector]]:
    """Solve min{⟨weights, c⟩ : c ∈ D} exactly, given D's vertices; return the optimum and the
    optimal vertices.

    With weights = h + 1 the optimum is 1/t for the point t·(h + 1) where the weighted diagonal
    meets ∂P, and the optimal vertices span the optimal face of the LP, of dimension m − 1.
    """
    values = [dot(weights, v) for v in vertices]
    best = min(values)
    return best, [v for v, value in zip(vertices, values) if value == best]


def compact_faces(points: Iterable[Point], vertices: Sequence[Vector]) -> list[frozenset[Point]]:
    """The support sets A ∩ F of every compact face F of P, ordered by dimension, given the
    vertices of D.

    Every face of a polyhedron is an intersection of facets. The facets of P are the
    hyperplanes ⟨v, ·⟩ = 1 for vertices v of D, and coordinate hyperplanes x_i = 0 touching P;
    closing their support sets under intersection yields every face. A face is compact when
    its recession cone {r ≥ 0 : ⟨n, r⟩ = 0 for every facet normal n at F} is {0}, i.e. when
    every coordinate has a facet normal at F with a positive entry there.
    """
    points = sorted(set(points))
    d = len(points[0])
    generators = [(frozenset(a for a in points if dot(a, v) == 1), v) for v in vertices]
    for i in range(d):
        on_hyperplane = frozenset(a for a in points if a[i] == 0)
        if on_hyperplane:
            generators.append((on_hyperplane, tuple(Fraction(int(i == j)) for j in range(d))))
    faces = {support for support, _ in generators}
    frontier = set(faces)
    while frontier:
        frontier = {s & g for s in frontier for g, _ in generators if s & g} - faces
        faces |= frontier
    compact = [face for face in faces
               if all(any(n[j] > 0 for g, n in generators if face <= g) for j in range(d))]
    return sorted(compact, key=lambda f: (affine_dimension(sorted(f)), sorted(f)))

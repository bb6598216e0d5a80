"""The compose methods, one small class each, in a registry: ``create_method(name, ...)``.

A method decides three things and nothing else: which maps serve as bases and which classes a run
targets (:meth:`ComposeMethod.select`, once per run), the base of one sample
(:meth:`ComposeMethod.make_base`) and the classes one sample pastes (:meth:`ComposeMethod.classes`).
Placing and painting segments is the same for every method (:mod:`labelforge.compose.sample`).

``--copy-paste`` stays a flag rather than a method: it changes what a sample carries (the donors'
photo pixels), not how bases and classes are chosen, and it combines with overlay, multi and
identity alike. A method says whether its bases have photos (``photos``); reconstruct's have none.

Example:
    >>> from labelforge.compose.methods import create_method, method_names
    >>> method_names()
    ('overlay', 'multi', 'reconstruct', 'identity')
    >>> create_method("reconstruct", target="inverse", per_map=4).shard_fields()
    {'target': 'inverse', 'per_map': 4, 'base': 'derived'}
    >>> create_method("blend")
    Traceback (most recent call last):
    ...
    labelforge.errors.LabelforgeError: unknown method 'blend'; valid: overlay, multi, reconstruct, identity
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ..errors import InputError, LabelforgeError
from ..labelspace import LabelSpace
from .base import base_ids, derivable, drawn_base
from .segments import SegmentIndex
from .targets import stats_target, target_weights

if TYPE_CHECKING:
    from .sample import ComposeContext

__all__ = [
    "Base",
    "ComposeMethod",
    "Donors",
    "Fallbacks",
    "Identity",
    "Multi",
    "Overlay",
    "Reconstruct",
    "Selection",
    "create_method",
    "method_names",
    "register_method",
]

_REGISTRY: dict[str, type[ComposeMethod]] = {}


def register_method(cls: type[ComposeMethod]) -> type[ComposeMethod]:
    """Class decorator: make ``cls`` available to ``--method cls.name``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"compose method {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def method_names() -> tuple[str, ...]:
    """The registered method names, in registration order."""
    return tuple(_REGISTRY)


def create_method(name: str, **options: Any) -> ComposeMethod:
    """The method called ``name`` with its options (``ComposeMethod.option_names``); an unknown name is
    answered with the valid ones, a bad option value with what it accepts."""
    cls = _REGISTRY.get(name)
    if cls is None:
        raise LabelforgeError(f"unknown method {name!r}; valid: {', '.join(_REGISTRY)}")
    return cls(**{k: v for k, v in options.items() if k in cls.option_names})


@dataclass(frozen=True)
class Selection:
    """What a run draws from, fixed once before any sample is composed."""

    bases: np.ndarray  # map indices a base is drawn from
    class_ids: tuple[int, ...]  # the classes a sample may paste
    names: list[str]  # their names: the shard config's ``classes``
    weights: np.ndarray | None = None  # paste probability per class_ids entry, when a sample picks some


@dataclass(frozen=True)
class Base:
    """The map one sample pastes onto."""

    label: np.ndarray  # (H, W) uint8
    instance: np.ndarray  # (H, W) int32
    image: np.ndarray | None  # (H, W, 3) uint8: the base map's photo, with copy-paste
    kind: str  # map | derived | drawn (provenance ``base_kind``)
    map: int | None  # the dataset map it comes from, None for a drawn base
    fallback_from: int | None = None  # the map a base could not be derived from


@dataclass(frozen=True)
class Fallbacks:
    """Samples whose base could not be made as the method says, and the maps that caused it."""

    maps: list[str]
    samples: int


@dataclass(frozen=True)
class Donors:
    """The segments a run draws from, and what an error about them names."""

    index: SegmentIndex
    ls: LabelSpace
    root: Path
    where: str  # e.g. "split 'train' of data/mini"
    min_area: int

    @property
    def n_maps(self) -> int:
        return len(self.index.keys)

    def ids_with_segments(self, names: list[str]) -> list[int]:
        """Label ids of ``names``; InputError for the first class without a segment to paste."""
        ids = [self.ls.get(n).id for n in names]
        for n, c in zip(names, ids, strict=True):
            if self.index.by_class(c).size == 0:
                raise InputError(
                    self.root, f"class {n!r} has no segment of at least {self.min_area} px in {self.where}"
                )
        return ids


class ComposeMethod:
    """One way to compose: subclasses set ``name``, register with :func:`register_method` and override
    what differs. Instances hold only the method's own options, so they fork and pickle freely."""

    name: ClassVar[str]
    photos: ClassVar[bool] = True  # bases are dataset maps with photos, so --copy-paste can apply
    option_names: ClassVar[tuple[str, ...]] = ()  # ComposeConfig fields this method reads

    def check(self, ls: LabelSpace, names: list[str]) -> None:
        """Refuse up front (before the dataset is read) a label space or class list this method cannot
        use (LabelforgeError)."""

    def select(self, donors: Donors, names: list[str]) -> Selection:
        """Bases and classes of the run; InputError when the dataset cannot serve the request."""
        raise NotImplementedError

    def make_base(self, ctx: ComposeContext, m: int, rng: np.random.Generator) -> Base:
        """The base of a sample whose first draw was map ``m``: that map as it is (and its photo)."""
        label, instance = ctx.read_map(m)
        image = ctx.read_photo(m) if ctx.copy_paste else None
        return Base(label=label, instance=instance, image=image, kind="map", map=m)

    def classes(self, ctx: ComposeContext, rng: np.random.Generator) -> list[int]:
        """The classes one sample pastes, in pasting order: every selected class."""
        return list(ctx.class_ids)

    def shard_fields(self) -> dict[str, Any]:
        """This method's options as the shard config records them (None where it has none)."""
        return {"target": None, "per_map": None, "base": None}

    def fallbacks(self, ctx: ComposeContext, total: int) -> Fallbacks | None:
        """Samples of ``0..total-1`` whose base falls back (None: this method never falls back)."""
        return None


@register_method
@dataclass(frozen=True)
class Overlay(ComposeMethod):
    """One segment of the one class, on a map that lacks the class."""

    name: ClassVar[str] = "overlay"

    def check(self, ls: LabelSpace, names: list[str]) -> None:
        if len(names) != 1:
            raise LabelforgeError(f"overlay pastes one class; got {len(names)} (use --method multi for several)")

    def select(self, donors: Donors, names: list[str]) -> Selection:
        ids = donors.ids_with_segments(names)
        bases = np.flatnonzero(~donors.index.presence[:, ids[0]])
        if bases.size == 0:
            raise InputError(
                donors.root, f"every map of {donors.where} already holds {names[0]!r}: no base map lacks it"
            )
        return Selection(bases, tuple(ids), names)


@register_method
@dataclass(frozen=True)
class Multi(ComposeMethod):
    """One segment of each listed class, on a map lacking at least one of them (any map when all hold all)."""

    name: ClassVar[str] = "multi"

    def check(self, ls: LabelSpace, names: list[str]) -> None:
        if not names:
            raise LabelforgeError("multi needs classes: --class NAME (repeatable) or --classes auto --stats FILE")

    def select(self, donors: Donors, names: list[str]) -> Selection:
        ids = donors.ids_with_segments(names)
        lacking = np.flatnonzero(~donors.index.presence[:, ids].all(axis=1))
        return Selection(lacking if lacking.size else np.arange(donors.n_maps), tuple(ids), names)


@register_method
@dataclass(frozen=True)
class Reconstruct(ComposeMethod):
    """A base of sky, road and building only (derived from a map, or drawn) and ``per_map`` classes
    drawn without replacement with probabilities from ``target`` (docs/compose.md)."""

    name: ClassVar[str] = "reconstruct"
    photos: ClassVar[bool] = False
    option_names: ClassVar[tuple[str, ...]] = ("target", "per_map", "base")
    target: str = "uniform"  # uniform | inverse | path to a stats.json
    per_map: int = 6
    base: str = "derived"  # derived | drawn

    def __post_init__(self) -> None:
        if self.base not in ("derived", "drawn"):
            raise LabelforgeError(f"--base must be derived or drawn, got {self.base!r}")
        if self.target not in ("uniform", "inverse") and not Path(self.target).is_file():
            raise InputError(self.target, "--target is neither uniform, inverse nor an existing stats.json")
        if self.per_map < 1:
            raise LabelforgeError(f"--per-map must be at least 1, got {self.per_map}")

    def check(self, ls: LabelSpace, names: list[str]) -> None:
        base_ids(ls)  # the label space must name its sky, road and building

    def select(self, donors: Donors, names: list[str]) -> Selection:
        index, ls = donors.index, donors.ls
        base_group = set(ls.ids(list(ls.base)))
        pool = [ls.get(n).id for n in names] or [c.id for c in ls.eval_classes]
        ids = [c for c in pool if c not in base_group and index.by_class(c).size > 0]
        if not ids:
            raise InputError(
                donors.root, f"no pasteable class (besides {', '.join(ls.base)}) has segments in {donors.where}"
            )
        freq = index.image_frequency()[ids]
        goal, kind = None, "frequency"
        if self.target not in ("uniform", "inverse"):
            kind, values = stats_target(self.target, ls)
            goal = np.array([values.get(c, 0.0) for c in ids])
        weights = target_weights(self.target, freq, n_maps=donors.n_maps, goal=goal, kind=kind)
        keep = weights > 0
        ids = [c for c, k in zip(ids, keep, strict=True) if k]
        names = [ls.get(c).name for c in ids]
        return Selection(np.arange(donors.n_maps), tuple(ids), names, weights[keep] / weights[keep].sum())

    def make_base(self, ctx: ComposeContext, m: int, rng: np.random.Generator) -> Base:
        if self.base == "derived" and derivable(ctx.index.presence[m], ctx.label_space):
            label = ctx.derived_base(m)
            return Base(label=label, instance=label.astype(np.int32), image=None, kind="derived", map=m)
        # Drawn, as asked or because map m holds no base pixel; from the sample's own generator either way.
        label = drawn_base(ctx.index.height, ctx.index.width, ctx.label_space, rng)
        fell_back = m if self.base == "derived" else None
        return Base(
            label=label, instance=label.astype(np.int32), image=None, kind="drawn", map=None, fallback_from=fell_back
        )

    def classes(self, ctx: ComposeContext, rng: np.random.Generator) -> list[int]:
        w = ctx.weights
        assert w is not None
        k = min(self.per_map, int((w > 0).sum()))
        picks = rng.choice(len(ctx.class_ids), size=k, replace=False, p=w / w.sum())
        return [ctx.class_ids[j] for j in picks.tolist()]

    def shard_fields(self) -> dict[str, Any]:
        return {"target": self.target, "per_map": self.per_map, "base": self.base}

    def fallbacks(self, ctx: ComposeContext, total: int) -> Fallbacks | None:
        if self.base != "derived":
            return None
        ok = derivable(ctx.index.presence, ctx.label_space)
        maps = [ctx.index.keys[m] for m in ctx.bases if not ok[m]]
        samples = sum(not ok[ctx.draw_base_map(ctx.rng(i))] for i in range(total)) if maps else 0
        return Fallbacks(maps, samples)


@register_method
@dataclass(frozen=True)
class Identity(ComposeMethod):
    """A random map unchanged: the same amount of extra data without rebalancing (the control)."""

    name: ClassVar[str] = "identity"

    def select(self, donors: Donors, names: list[str]) -> Selection:
        return Selection(np.arange(donors.n_maps), (), [])

    def classes(self, ctx: ComposeContext, rng: np.random.Generator) -> list[int]:
        return []

"""The conditions a plan can compare: one small class per kind, in one registry.

A kind knows three things: which TOML keys it takes (and how it expands them into conditions),
which train-eval settings it changes, and which stages make its supplementary data. Everything
else (seeds, ratios, schedules, keys, executors, the report) is the same for every kind, so a new
kind is one class here plus, when it needs a new kind of stage, one adapter.

| kind | training data |
| --- | --- |
| baseline | the originals, the plan's augmentation (the reference of every other row) |
| no-aug | the originals without augmentation |
| rcs | the originals, drawn by rare-class sampling |
| control | identity maps (no rebalancing), rendered by the generator: "more data" without "rebalanced" |
| overlay / multi / reconstruct | composed maps, rendered by the generator |
| copy-paste | overlay or multi maps carrying their donors' real pixels |
| oracle | composed maps painted by the mini-Cityscapes painter: what a perfect generator would give |
| composite | overlay or multi maps rendered with ``render --composite``: real photos, generated pasted objects |
| filter | composed maps rendered by the generator, pixels the judge (baseline, first seed) cannot read dropped |

Example:
    >>> sorted(CONDITIONS)[:3]
    ['baseline', 'composite', 'control']
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..labelspace import LabelSpace
from .plan import ConditionSpec, DatasetSpec, GeneratorSpec, PlanError, Section, check_classes

if TYPE_CHECKING:
    from .graph import GraphBuilder
    from .stages import Stage

__all__ = ["ConditionKind", "CONDITIONS", "resolve_conditions"]


class ConditionKind:
    """A kind of condition. Subclasses set ``name`` and override what differs."""

    name = ""
    keys: tuple[str, ...] = ()  # TOML keys besides kind and name
    supplementary = False  # trains on composed data, so ratios and schedules apply
    uses_generator = False

    def resolve(self, sec: Section, plan_classes: tuple[str, ...], ls: LabelSpace) -> list[ConditionSpec]:
        """The conditions one ``[[conditions]]`` table stands for (some kinds expand to one per class)."""
        return [ConditionSpec(self.name, sec.get("name", str, self.name))]

    def check(self, sec: Section, dataset: DatasetSpec, generator: GeneratorSpec | None) -> None:
        if self.uses_generator and generator is None:
            raise sec.fail("kind", f"{self.name!r} renders with the generator: add a [generator] table")

    def train_overrides(self, cond: ConditionSpec) -> dict[str, Any]:
        """TrainEvalConfig fields this condition sets."""
        return {}

    def data(self, cond: ConditionSpec, g: GraphBuilder, ratio: float) -> Stage | None:
        """The stage whose output is the supplementary shard dir (None: originals only)."""
        return None


class Baseline(ConditionKind):
    name = "baseline"


class NoAug(ConditionKind):
    name = "no-aug"

    def train_overrides(self, cond: ConditionSpec) -> dict[str, Any]:
        return {"aug": "none"}


class RareClassSampling(ConditionKind):
    name = "rcs"
    keys = ("temperature", "min_pixels", "min_crop_ratio")

    def resolve(self, sec: Section, plan_classes: tuple[str, ...], ls: LabelSpace) -> list[ConditionSpec]:
        opts = {
            "rcs_temperature": float(sec.get("temperature", (int, float), 0.01)),
            "rcs_min_pixels": sec.get("min_pixels", int, 3000),
            "rcs_min_crop_ratio": float(sec.get("min_crop_ratio", (int, float), 0.5)),
        }
        if opts["rcs_temperature"] <= 0:
            raise sec.fail("temperature", "must be positive")
        return [ConditionSpec(self.name, sec.get("name", str, self.name), options=opts)]

    def train_overrides(self, cond: ConditionSpec) -> dict[str, Any]:
        return {"sampling": "rcs", **cond.options}


def _classes(sec: Section, ls: LabelSpace, default: tuple[str, ...]) -> tuple[str, ...]:
    one, many = sec.get("class", str), sec.get_list("classes", str)
    if one is not None and many is not None:
        raise sec.fail("class", "give class or classes, not both")
    names = [one] if one is not None else many
    if names is None:
        return default
    return tuple(check_classes(names, ls, sec, "class" if one is not None else "classes"))


class Composed(ConditionKind):
    """Composed maps (``method``) rendered by the generator."""

    method = ""
    supplementary = True
    uses_generator = True

    def maps(self, sec: Section) -> str:
        return self.method

    def resolve(self, sec: Section, plan_classes: tuple[str, ...], ls: LabelSpace) -> list[ConditionSpec]:
        maps = self.maps(sec)
        classes = () if maps == "identity" else _classes(sec, ls, () if maps == "reconstruct" else plan_classes)
        opts: dict[str, Any] = {}
        if maps == "reconstruct":
            target = sec.get("target", str)
            if target is not None:
                if target not in ("uniform", "inverse"):
                    raise sec.fail("target", f"unknown target {target!r}; valid: uniform, inverse")
                opts["target"] = target
        if maps == "multi" and not classes:
            raise sec.fail("classes", "multi needs classes")
        name = sec.get("name", str)
        if maps == "overlay" and len(classes) > 1:  # one condition per class
            if name is not None:
                raise sec.fail("name", "an overlay over several classes becomes one condition per class; drop the name")
            return [ConditionSpec(self.name, self.default_name(maps, (c,)), (c,), maps, opts) for c in classes]
        return [ConditionSpec(self.name, name or self.default_name(maps, classes), classes, maps, opts)]

    def default_name(self, maps: str, classes: tuple[str, ...]) -> str:
        return f"{self.name}-{classes[0]}" if maps == "overlay" else self.name

    def data(self, cond: ConditionSpec, g: GraphBuilder, ratio: float) -> Stage | None:
        assert cond.maps is not None
        return g.render(g.compose(cond.maps, cond.classes, ratio, cond.options), oracle=False)


class Overlay(Composed):
    name, method, keys = "overlay", "overlay", ("class", "classes")


class Multi(Composed):
    name, method, keys = "multi", "multi", ("classes",)


class Reconstruct(Composed):
    name, method, keys = "reconstruct", "reconstruct", ("classes", "target")


class Control(Composed):
    name, method = "control", "identity"


class Oracle(Composed):
    name, keys, uses_generator = "oracle", ("maps", "class", "classes", "target"), False
    valid_maps = ("overlay", "multi", "reconstruct", "identity")

    def maps(self, sec: Section) -> str:
        maps = sec.get("maps", str, "multi")
        if maps not in self.valid_maps:
            raise sec.fail("maps", f"unknown maps {maps!r}; valid: {', '.join(self.valid_maps)}")
        return maps

    def check(self, sec: Section, dataset: DatasetSpec, generator: GeneratorSpec | None) -> None:
        if not dataset.has_painter:
            raise sec.fail(
                "kind",
                f"{self.name!r} paints with the mini-Cityscapes painter, which {dataset.root} has not (no synth.json)",
            )

    def default_name(self, maps: str, classes: tuple[str, ...]) -> str:
        return f"{self.name}-{maps}" + (f"-{classes[0]}" if maps == "overlay" else "")

    def data(self, cond: ConditionSpec, g: GraphBuilder, ratio: float) -> Stage | None:
        assert cond.maps is not None
        return g.render(g.compose(cond.maps, cond.classes, ratio, cond.options), oracle=True)


class CopyPaste(Oracle):
    name, keys, valid_maps = "copy-paste", ("maps", "class", "classes"), ("overlay", "multi")

    def check(self, sec: Section, dataset: DatasetSpec, generator: GeneratorSpec | None) -> None:
        pass

    def data(self, cond: ConditionSpec, g: GraphBuilder, ratio: float) -> Stage | None:
        assert cond.maps is not None
        return g.compose(cond.maps, cond.classes, ratio, cond.options, copy_paste=True)


class Composite(Oracle):
    """The maps of overlay or multi rendered by the generator with ``--composite``: each base map's real
    photo everywhere but around the pasted objects, which alone are synthesized."""

    name, keys, valid_maps, uses_generator = "composite", ("maps", "class", "classes"), ("overlay", "multi"), True

    def check(self, sec: Section, dataset: DatasetSpec, generator: GeneratorSpec | None) -> None:
        ConditionKind.check(self, sec, dataset, generator)

    def data(self, cond: ConditionSpec, g: GraphBuilder, ratio: float) -> Stage | None:
        assert cond.maps is not None
        return g.render(g.compose(cond.maps, cond.classes, ratio, cond.options), oracle=False, composite=True)


class Filter(Oracle):
    """GAN renders of composed maps, filtered FreeMask-style by the baseline of the plan's first seed
    (``labelforge filter``): their pixels whose loss under that segmenter exceeds ``factor`` times
    the class's mean loss on the real training photos are ignored in training."""

    name, keys, uses_generator = "filter", ("maps", "class", "classes", "target", "factor"), True

    def resolve(self, sec: Section, plan_classes: tuple[str, ...], ls: LabelSpace) -> list[ConditionSpec]:
        from ..quality.filter import DEFAULT_FACTOR

        factor = sec.get("factor", (int, float), DEFAULT_FACTOR)
        if not factor > 0:
            raise sec.fail("factor", f"must be positive, got {factor!r}")
        specs = super().resolve(sec, plan_classes, ls)
        return [replace(c, options={**c.options, "factor": float(factor)}) for c in specs]

    def check(self, sec: Section, dataset: DatasetSpec, generator: GeneratorSpec | None) -> None:
        ConditionKind.check(self, sec, dataset, generator)

    def data(self, cond: ConditionSpec, g: GraphBuilder, ratio: float) -> Stage | None:
        assert cond.maps is not None
        compose_opts = {k: v for k, v in cond.options.items() if k != "factor"}
        rendered = g.render(g.compose(cond.maps, cond.classes, ratio, compose_opts), oracle=False)
        return g.filter(rendered, cond.options["factor"])


CONDITIONS: dict[str, ConditionKind] = {
    k.name: k
    for k in (
        Baseline(),
        NoAug(),
        Control(),
        Overlay(),
        Multi(),
        Reconstruct(),
        CopyPaste(),
        Oracle(),
        RareClassSampling(),
        Composite(),
        Filter(),
    )
}


def resolve_conditions(
    sections: list[Section],
    plan_classes: tuple[str, ...],
    dataset: DatasetSpec,
    generator: GeneratorSpec | None,
    ls: LabelSpace,
) -> list[ConditionSpec]:
    """Every ``[[conditions]]`` table checked and expanded; a baseline is put first when the plan has none."""
    out: list[ConditionSpec] = []
    names: set[str] = set()
    for sec in sections:
        kind_name = sec.get("kind", str)
        if kind_name is None:
            raise sec.fail("kind", f"missing; valid: {', '.join(CONDITIONS)}")
        kind = CONDITIONS.get(kind_name)
        if kind is None:
            raise sec.fail("kind", f"unknown condition {kind_name!r}; valid: {', '.join(CONDITIONS)}")
        specs = kind.resolve(sec, plan_classes, ls)
        sec.done(["kind", "name", *kind.keys])
        kind.check(sec, dataset, generator)
        for spec in specs:
            if spec.name in names:
                raise sec.fail("name", f"{spec.name!r} is used twice; give each condition its own name")
            names.add(spec.name)
            out.append(spec)
    if not any(c.kind == "baseline" for c in out):
        if "baseline" in names:
            raise PlanError(sections[0].plan, "conditions: the name 'baseline' is reserved for the baseline condition")
        out.insert(0, ConditionSpec("baseline", "baseline"))
    return out

"""An experiment plan: a TOML file read into frozen records, every bad value refused with the key it sits at.

Sections (docs/experiments.md lists every key):

* ``[plan]``: ``seeds``, ``ratios`` (supplementary share, each strictly between 0 and 1), ``schedules``,
  ``classes`` (the rare classes the plan augments and the report follows), optional ``count``.
* ``[dataset]``: ``root = PATH`` (with ``layout``, default ``auto``) or ``synth = {train, val, size, seed}``;
  ``label_space`` (default: the dataset's own, as ``--label-space auto``).
* ``[generator]``: ``checkpoint = FILE`` or a training spec (``arch``: pix2pixhd | oasis, ``preset``, ``epochs``, ...).
* ``[compose]``, ``[render]``, ``[segmenter]``: options of those stages, shared by every condition.
* ``[quality]``: the render-quality stages (``labelforge quality`` of each condition's training shards,
  judged by the baseline of the first seed); their runtime options also serve the filter stages.
* ``[[conditions]]``: ``kind`` plus the kind's own keys (:mod:`labelforge.experiment.conditions`).
* ``[slurm]``: what ``--executor slurm`` asks the cluster for.

Example:
    >>> from labelforge.experiment.plan import load_plan  # doctest: +SKIP
    >>> plan = load_plan("plans/quick.toml")  # doctest: +SKIP
    >>> [c.name for c in plan.conditions]  # doctest: +SKIP
    ['baseline', 'no-aug', 'overlay-wall', ...]
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..labelspace import LabelSpace, get_label_space

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 reads TOML with the backport
    import tomli as tomllib

__all__ = ["PlanError", "Section", "DatasetSpec", "GeneratorSpec", "ConditionSpec", "Plan", "load_plan", "parse_hw"]


class PlanError(InputError):
    """A bad plan: ``"<plan file>: <key>: <problem>"``."""


@dataclass
class Section:
    """One TOML table being read: every key taken is remembered, so leftovers are reported as unknown."""

    plan: Path
    where: str
    data: dict[str, Any]
    taken: set[str] = field(default_factory=set)

    def fail(self, key: str | None, problem: str) -> PlanError:
        name = self.where if key is None else (f"{self.where}.{key}" if self.where else key)
        return PlanError(self.plan, f"{name}: {problem}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
        self.taken.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        ok = isinstance(value, kind) and not (isinstance(value, bool) and bool not in _as_tuple(kind))
        if not ok:
            names = " or ".join(t.__name__ for t in _as_tuple(kind))
            raise self.fail(key, f"expected {names}, got {value!r}")
        return value

    def get_list(self, key: str, item: type | tuple[type, ...], default: list[Any] | None = None) -> list[Any] | None:
        value = self.get(key, list, default)
        if value is None:
            return None
        for i, v in enumerate(value):
            if not isinstance(v, item) or isinstance(v, bool):
                names = " or ".join(t.__name__ for t in _as_tuple(item))
                raise self.fail(f"{key}[{i}]", f"expected {names}, got {v!r}")
        return list(value)

    def sub(self, key: str, required: bool = False) -> Section | None:
        value = self.get(key, dict)
        if value is None:
            if required:
                raise self.fail(key, "missing")
            return None
        return Section(self.plan, f"{self.where}.{key}" if self.where else key, value)

    def rest(self) -> dict[str, Any]:
        """The keys not taken yet (passed through to a stage config, which checks them)."""
        return {k: v for k, v in self.data.items() if k not in self.taken}

    def done(self, allowed: list[str] | None = None) -> None:
        unknown = sorted(set(self.data) - self.taken)
        if unknown:
            valid = ", ".join(sorted(allowed if allowed is not None else self.taken))
            raise self.fail(unknown[0], f"unknown key; valid: {valid}")


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def plan_path(plan: Path, value: str) -> Path:
    """A path written in a plan: absolute, or relative to the plan file's folder."""
    return Path(value) if Path(value).is_absolute() else (plan.parent / value).resolve()


def parse_hw(text: str, sec: Section, key: str) -> tuple[int, int]:
    """``"64x128"`` -> (64, 128); a bad value names the key."""
    parts = text.lower().split("x")
    try:
        h, w = (int(p) for p in parts)
    except ValueError:
        raise sec.fail(key, f"expected HEIGHTxWIDTH such as '64x128', got {text!r}") from None
    if min(h, w) < 8:
        raise sec.fail(key, f"{text!r} is too small (at least 8x8)")
    return h, w


@dataclass(frozen=True)
class DatasetSpec:
    root: Path | None  # an existing dataset root
    synth: dict[str, int] | None  # mini-Cityscapes to generate: train, val, height, width, seed
    label_space: str = "cityscapes"  # as every stage is given it ("auto": each stage finds the dataset's own)
    workers: int = 0  # synth and stats processes (0: every core)
    layout: str = "auto"  # of ``root`` (labelforge.layouts)
    space: LabelSpace | None = field(default=None, compare=False, repr=False)  # label_space, resolved

    @property
    def has_painter(self) -> bool:
        """Only the mini-Cityscapes has a painter (the oracle renderer): generated here, or by ``labelforge synth``."""
        return self.synth is not None or (self.root is not None and (self.root / "synth.json").is_file())


@dataclass(frozen=True)
class GeneratorSpec:
    arch: str = "pix2pixhd"
    checkpoint: Path | None = None  # an existing generator.pt (or its run dir): nothing is trained
    preset: str = "tiny"
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig overrides
    processes: int = 1
    device: str = "auto"
    workers: int = 2


@dataclass(frozen=True)
class ConditionSpec:
    """One row of the report's table: a kind from the registry, resolved and checked."""

    kind: str
    name: str
    classes: tuple[str, ...] = ()
    maps: str | None = None  # compose method whose maps the condition uses (oracle, copy-paste)
    options: dict[str, Any] = field(default_factory=dict)  # kind-specific (reconstruct target, rcs temperature)


@dataclass(frozen=True)
class Plan:
    path: Path
    name: str
    title: str
    seeds: tuple[int, ...]
    ratios: tuple[float, ...]
    schedules: tuple[str, ...]
    classes: tuple[str, ...]  # the rare classes: default classes of the conditions, followed by the report
    count: int | None  # supplementary maps per condition; None: from each ratio
    dataset: DatasetSpec
    generator: GeneratorSpec | None
    compose: dict[str, Any]
    render: dict[str, Any]
    segmenter: dict[str, Any]
    conditions: tuple[ConditionSpec, ...]
    preview: int = 4
    slurm: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=lambda: {"enabled": True})  # [quality], checked

    @property
    def label_space(self) -> LabelSpace:
        return self.dataset.space or get_label_space(self.dataset.label_space)


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise PlanError(path, "plan file not found")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(path, f"not valid TOML ({exc})") from None


def _dataset(top: Section) -> DatasetSpec:
    sec = top.sub("dataset", required=True)
    assert sec is not None
    root = sec.get("root", str)
    synth_sec = sec.sub("synth")
    label_space = sec.get("label_space", str, "auto")
    layout = sec.get("layout", str, "auto")
    workers = sec.get("workers", int, 0)
    sec.done()
    if (root is None) == (synth_sec is None):
        raise sec.fail(None, "give root = PATH (an existing dataset) or synth = {train, val, size, seed}")
    if root is None:
        assert synth_sec is not None
        if layout not in ("auto", "cityscapes"):
            raise sec.fail("layout", f"the mini-Cityscapes is written in the Cityscapes layout, not {layout!r}")
        return DatasetSpec(
            root=None,
            synth=_synth(synth_sec),
            label_space="cityscapes" if label_space == "auto" else label_space,
            workers=workers,
            space=_space(sec, label_space),
        )
    root_path = plan_path(top.plan, root)
    if not root_path.is_dir():
        raise sec.fail("root", f"dataset root {root_path} does not exist")
    from ..dataset import open_dataset

    try:
        ds = open_dataset(root_path, label_space, layout)  # lists no sample: only the layout and label space
    except Exception as exc:  # noqa: BLE001 - a root that does not open is the plan's dataset's fault
        raise sec.fail("layout" if "layout" in str(exc) else "label_space", str(exc)) from None
    return DatasetSpec(
        root=root_path, synth=None, label_space=label_space, workers=workers, layout=layout, space=ds.label_space
    )


def _synth(sec: Section) -> dict[str, int]:
    h, w = parse_hw(sec.get("size", str, "256x512"), sec, "size")
    synth = {
        "train": sec.get("train", int, 300),
        "val": sec.get("val", int, 100),
        "height": h,
        "width": w,
        "seed": sec.get("seed", int, 0),
    }
    sec.done()
    if synth["train"] < 1 or synth["val"] < 1:
        raise sec.fail("train", "train and val need at least one sample each")
    return synth


def _space(sec: Section, label_space: str) -> LabelSpace:
    try:
        return get_label_space("cityscapes" if label_space == "auto" else label_space)
    except Exception as exc:  # noqa: BLE001 - any failure to read the label space is the key's fault
        raise sec.fail("label_space", str(exc)) from None


def _generator(top: Section) -> GeneratorSpec | None:
    from ..gan.archs import ARCHS, DEFAULT_ARCH

    sec = top.sub("generator")
    if sec is None:
        return None
    arch = sec.get("arch", str, DEFAULT_ARCH)
    if arch not in ARCHS:
        raise sec.fail("arch", f"unknown generator {arch!r}; valid: {', '.join(ARCHS)}")
    ck = sec.get("checkpoint", str)
    spec = dict(
        arch=arch,
        preset=sec.get("preset", str, "tiny"),
        processes=sec.get("processes", int, 1),
        device=sec.get("device", str, "auto"),
        workers=sec.get("workers", int, 2),
    )
    train = sec.rest()
    allowed = ["epochs", "batch_size", "lr", "decay_epochs", "size", "vgg_weights", "seed", "amp_dtype", "log_every"]
    for key in train:
        if key not in allowed:
            raise sec.fail(
                key, f"unknown key; valid: arch, checkpoint, preset, processes, device, workers, {', '.join(allowed)}"
            )
    for key in ARCHS[arch].unused:
        if key in train:
            raise sec.fail(key, f"the {arch} generator does not use {key}")
    if "size" in train:
        train["height"], train["width"] = parse_hw(sec.get("size", str), sec, "size")
        del train["size"]
    if isinstance(train.get("vgg_weights"), str):
        train["vgg_weights"] = str(plan_path(top.plan, train["vgg_weights"]))
    if ck is not None:
        if train:
            raise sec.fail(sorted(train)[0], "a checkpoint is used as it is; drop the training keys or the checkpoint")
        path = plan_path(top.plan, ck)
        if path.is_dir():
            path = path / "generator.pt"
        if not path.is_file():
            raise sec.fail("checkpoint", f"{path} not found")
        return GeneratorSpec(checkpoint=path, **spec)
    return GeneratorSpec(train=train, **spec)


def _plan_section(top: Section, ls: LabelSpace) -> dict[str, Any]:
    from ..seg.presets import SCHEDULES

    sec = top.sub("plan", required=True)
    assert sec is not None
    seeds = sec.get_list("seeds", int, [0]) or []
    ratios = sec.get_list("ratios", (int, float), [0.5]) or []
    schedules = sec.get_list("schedules", str, ["mixed"]) or []
    classes = sec.get_list("classes", str)
    out = dict(
        name=sec.get("name", str, top.plan.stem),
        title=sec.get("title", str, ""),
        count=sec.get("count", int),
        preview=sec.get("preview", int, 4),
    )
    sec.done()
    if not seeds or len(set(seeds)) != len(seeds):
        raise sec.fail("seeds", "give at least one seed, each once")
    for i, r in enumerate(ratios):
        if not 0.0 < float(r) < 1.0:
            raise sec.fail(
                f"ratios[{i}]", f"{r} is outside (0, 1): a supplementary ratio lies strictly between 0 and 1"
            )
    if not ratios or len(set(ratios)) != len(ratios):
        raise sec.fail("ratios", "give at least one ratio, each once")
    for i, s in enumerate(schedules):
        if s not in SCHEDULES:
            raise sec.fail(f"schedules[{i}]", f"unknown schedule {s!r}; valid: {', '.join(SCHEDULES)}")
    if not classes:
        raise sec.fail("classes", 'missing: name the rare classes the plan augments, e.g. classes = ["wall", "bus"]')
    if out["count"] is not None and out["count"] < 1:
        raise sec.fail("count", "must be at least 1")
    return dict(
        seeds=tuple(seeds),
        ratios=tuple(float(r) for r in ratios),
        schedules=tuple(schedules),
        classes=tuple(check_classes(classes, ls, sec, "classes")),
        **out,
    )


def check_classes(names: list[str], ls: LabelSpace, sec: Section, key: str) -> list[str]:
    """Canonical names of evaluated classes; a name the dataset's label space lacks is answered with the valid ones."""
    valid = ls.class_names
    out = []
    for i, n in enumerate(names):
        match = [c for c in valid if c.lower() == n.strip().lower()]
        if not match:
            raise sec.fail(f"{key}[{i}]", f"the dataset has no evaluated class {n!r}; valid: {', '.join(valid)}")
        out.append(match[0])
    if len(set(out)) != len(out):
        raise sec.fail(key, "a class is named twice")
    return out


def _options(top: Section, key: str, allowed: list[str]) -> dict[str, Any]:
    sec = top.sub(key)
    if sec is None:
        return {}
    values = dict(sec.data)
    sec.taken.update(k for k in values if k in allowed)
    sec.done(allowed)
    return values


COMPOSE_KEYS = ["seed", "shift", "flip", "protect", "min_area", "min_contact", "min_visible", "retries", "per_map",
                "base", "target", "samples_per_shard", "workers", "preview", "cache_dir"]  # fmt: skip
RENDER_KEYS = ["batch_size", "amp_dtype", "seed", "compress_images", "renders_per_map", "device", "workers",
               "processes", "compile", "channels_last", "preview"]  # fmt: skip
SLURM_KEYS = ["cluster", "partition", "timeout_min", "gpus_per_node", "cpus_per_task", "mem_gb", "account", "qos",
              "constraint", "array_parallelism", "additional"]  # fmt: skip
RUN_FIXED = {"root", "out", "supp", "supp_ratio", "schedule", "seed", "sampling", "rcs_temperature", "rcs_min_pixels",
             "rcs_min_crop_ratio", "label_space", "layout", "allow_eval_leak"}  # fmt: skip


QUALITY_KEYS = ["enabled", "max_images", "max_real", "inception_weights", "batch_size", "device"]


def _quality(top: Section) -> dict[str, Any]:
    """``[quality]``: whether each condition's training shards are measured, and how (docs/quality.md)."""
    sec = top.sub("quality")
    if sec is None:
        return {"enabled": True}
    out: dict[str, Any] = {"enabled": sec.get("enabled", bool, True)}
    for key in ("max_images", "max_real", "batch_size"):
        value = sec.get(key, int)
        if value is not None:
            if value < (1 if key == "batch_size" else 2):
                raise sec.fail(key, f"must be at least {1 if key == 'batch_size' else 2}")
            out[key] = value
    weights = sec.get("inception_weights", str)
    if weights is not None:
        path = plan_path(top.plan, weights)
        if not path.is_file():
            raise sec.fail("inception_weights", f"{path} not found")
        out["inception_weights"] = str(path)
    out["device"] = sec.get("device", str, "auto")
    sec.done(QUALITY_KEYS)
    return out


def segmenter_keys() -> list[str]:
    from ..seg.presets import TrainEvalConfig

    return sorted({f.name for f in fields(TrainEvalConfig)} - RUN_FIXED | {"processes"})


def _check_renders(path: Path, render: dict[str, Any], generator: GeneratorSpec | None) -> None:
    """``renders_per_map`` is a positive integer, above 1 only for a generator that draws noise (a
    checkpoint's architecture is known when render reads it)."""
    from ..gan.archs import get_arch

    k = render.get("renders_per_map", 1)
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise PlanError(path, f"render.renders_per_map: expected an integer >= 1, got {k!r}")
    if k > 1 and generator is not None and generator.checkpoint is None and not get_arch(generator.arch).stochastic:
        raise PlanError(
            path,
            f'render.renders_per_map: {k} renders per map need a generator that draws noise (arch = "oasis");'
            f" {generator.arch} renders a map the same way every time",
        )


def load_plan(path: str | Path) -> Plan:
    """Read and check a plan; raises :class:`PlanError` naming the first bad key."""
    from .conditions import resolve_conditions

    path = Path(path)
    top = Section(path, "", _read_toml(path))
    dataset = _dataset(top)
    ls = dataset.space or get_label_space(dataset.label_space)
    head = _plan_section(top, ls)
    generator = _generator(top)
    compose = _options(top, "compose", COMPOSE_KEYS)
    render = _options(top, "render", RENDER_KEYS)
    segmenter = _options(top, "segmenter", segmenter_keys())
    for section, key in ((segmenter, "backbone_weights"), (compose, "cache_dir")):
        if isinstance(section.get(key), str):
            section[key] = str(plan_path(path, section[key]))
    quality = _quality(top)
    slurm = _options(top, "slurm", SLURM_KEYS)
    if slurm.get("cluster") not in (None, "slurm", "local", "debug"):
        raise PlanError(path, f"slurm.cluster: unknown cluster {slurm['cluster']!r}; valid: slurm, local, debug")
    raw = top.get_list("conditions", dict, []) or []
    top.done(["plan", "dataset", "generator", "compose", "render", "segmenter", "quality", "conditions", "slurm"])
    sections = [Section(path, f"conditions[{i}]", c) for i, c in enumerate(raw)]
    conditions = resolve_conditions(sections, head["classes"], dataset, generator, ls)
    _check_renders(path, render, generator)
    return Plan(
        path=path,
        dataset=dataset,
        generator=generator,
        compose=compose,
        render=render,
        segmenter=segmenter,
        slurm=slurm,
        quality=quality,
        conditions=tuple(conditions),
        **head,
    )

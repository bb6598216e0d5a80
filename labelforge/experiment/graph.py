"""From a plan to its stage graph: dataset, stats, generator, compose, render, filter, train-eval, quality, report.

Stages that two conditions share (the dataset, the generator, the maps that both the GAN and the
oracle render) are one stage, found by key. Every config is resolved here with the library's own
config classes, so a bad value is refused (naming its plan section) before anything runs.

The **judge** of renders is the baseline run of the plan's first seed: a segmenter trained on the
real photos alone, with the plan's own segmenter settings, which the plan trains anyway. The filter
stages (``labelforge filter``) and the quality stages (``labelforge quality`` of every condition's
training shards) take it as an input, so they run as soon as it is finished and before the runs
that train on filtered data.

Example:
    >>> from labelforge.experiment import build_graph, load_plan  # doctest: +SKIP
    >>> graph = build_graph(load_plan("plans/quick.toml"))  # doctest: +SKIP
    >>> [s.kind for s in graph.stages][:3]  # doctest: +SKIP
    ['synth', 'stats', 'train-generator']
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from ..errors import LabelforgeError
from .conditions import CONDITIONS
from .plan import ConditionSpec, Plan, PlanError
from .stages import External, Stage

__all__ = ["Graph", "GraphBuilder", "build_graph", "run_order", "segmenter_config"]

# Options each command lets a resume change: they do not decide the output, so they are not keyed.
SEG_RUNTIME = ("device", "workers", "log_every", "save_predictions")
GEN_RUNTIME = ("device", "workers", "amp_dtype", "log_every")
COMPOSE_RUNTIME = ("workers", "preview", "cache_dir")
RENDER_RUNTIME = ("batch_size", "device", "workers", "preview", "compile", "channels_last")
JUDGE_RUNTIME = ("batch_size", "device")  # of the filter and quality stages, from [quality]
# Data stages first (they feed many runs), then the runs, then the report. Filter and quality stages
# wait for the judge (a run); they come right after it, before the runs that are still to go.
KIND_ORDER = {"synth": 0, "stats": 1, "train-generator": 2, "compose": 3, "render": 4, "filter": 5, "quality": 5,
              "train-eval": 6, "report": 7}  # fmt: skip


@dataclass(frozen=True)
class Graph:
    plan: Plan
    stages: list[Stage]  # in an order that runs every stage after its inputs
    runs: list[Stage]  # the train-eval stages
    report: Stage


def _bad(plan: Plan, section: str, exc: Exception) -> PlanError:
    return PlanError(plan.path, f"{section}: {exc}")


def segmenter_config(plan: Plan, overrides: dict[str, Any]) -> dict[str, Any]:
    """The resolved train-eval config of ``plan`` plus ``overrides`` (root, out and supp left as placeholders)."""
    from ..seg.presets import config_to_dict, resolve_config

    values = {k: v for k, v in plan.segmenter.items() if k not in ("preset", "processes")}
    for key in ("size", "crop"):
        value = values.get(key)
        if isinstance(value, list):
            values[key] = tuple(value)
        elif isinstance(value, str):
            try:
                values[key] = None if value == "native" else tuple(int(v) for v in value.lower().split("x"))
            except ValueError:
                raise PlanError(plan.path, f"segmenter.{key}: expected HEIGHTxWIDTH such as '64x128'") from None
    size_native = "size" in values and values["size"] is None
    try:
        cfg = resolve_config(plan.segmenter.get("preset", "tiny"), root="-", out="-", **values, **overrides)
        if size_native:
            cfg = replace(cfg, size=None)
    except (LabelforgeError, TypeError, ValueError) as exc:
        raise _bad(plan, "segmenter", exc) from None
    return config_to_dict(cfg)


class GraphBuilder:
    """Adds stages once each (by key) in an order where inputs come first."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.stages: dict[str, Stage] = {}
        self._dataset: Stage | External | None = None
        self._generator: Stage | External | None = None

    def add(self, stage: Stage) -> Stage:
        return self.stages.setdefault(stage.key, stage)

    def dataset(self) -> Stage | External:
        if self._dataset is None:
            ds = self.plan.dataset
            if ds.root is not None:
                self._dataset = External.of(ds.root)
            else:
                assert ds.synth is not None
                s = ds.synth
                label = f"mini-{s['train']}-{s['val']}-{s['height']}x{s['width']}"
                self._dataset = self.add(Stage.make("synth", label, dict(s), {}, runtime={"workers": ds.workers}))
        return self._dataset

    def data_params(self) -> dict[str, str]:
        """How the stages that read the dataset open it: its label space, and a layout when one is named
        (left out otherwise, so the keys of Cityscapes-layout plans stay what they were)."""
        ds = self.plan.dataset
        return {"label_space": ds.label_space} | ({"layout": ds.layout} if ds.layout != "auto" else {})

    def stats(self) -> Stage:
        ds = self.plan.dataset
        params = {"splits": ["train", "val"], **self.data_params()}
        return self.add(Stage.make("stats", "train-val", params, {"root": self.dataset()}, {"workers": ds.workers}))

    def generator(self) -> Stage | External:
        if self._generator is None:
            spec = self.plan.generator
            assert spec is not None
            if spec.checkpoint is not None:
                st = spec.checkpoint.stat()
                self._generator = External.of(spec.checkpoint, {"size": st.st_size, "mtime_ns": st.st_mtime_ns})
            else:
                from ..gan.archs import get_arch

                try:
                    gen_cfg, base = get_arch(spec.arch).preset(spec.preset)
                    train = replace(base, **spec.train)
                except (LabelforgeError, TypeError) as exc:
                    raise _bad(self.plan, "generator", exc) from None
                params = {"arch": spec.arch, "generator": asdict(gen_cfg), "train": asdict(train)}
                runtime = {k: params["train"].pop(k) for k in GEN_RUNTIME}
                runtime.update(device=spec.device, workers=spec.workers)
                params.update(self.data_params())
                label = f"{spec.arch}-{spec.preset}"
                stage = Stage.make(
                    "train-generator", label, params, {"root": self.dataset()}, runtime, processes=spec.processes
                )
                self._generator = self.add(stage)
        return self._generator

    def compose(
        self, method: str, classes: tuple[str, ...], ratio: float, options: dict[str, Any], copy_paste: bool = False
    ) -> Stage:
        opts = {**self.plan.compose, **options}
        runtime = {k: opts.pop(k) for k in COMPOSE_RUNTIME if k in opts}
        amount = {"count": self.plan.count} if self.plan.count is not None else {"ratio": ratio}
        params = {"method": method, "classes": list(classes), "copy_paste": copy_paste, **amount, **opts}
        params.update(self.data_params())
        label = "-".join([method, *[c.replace(" ", "_") for c in classes[:3]]] + (["cp"] if copy_paste else []))
        label += f"-r{ratio:g}" if self.plan.count is None else f"-n{self.plan.count}"
        return self.add(Stage.make("compose", label, params, {"root": self.dataset()}, runtime))

    def render(self, shards: Stage, oracle: bool, composite: bool = False) -> Stage:
        opts = dict(self.plan.render)
        processes = opts.pop("processes", 1)
        runtime = {k: opts.pop(k) for k in RENDER_RUNTIME if k in opts}
        params = {"oracle": oracle, **opts}
        if composite:  # only when set, so the keys of plain renders stay what they were
            params["composite"] = True
        inputs: dict[str, Stage | External] = {"shards": shards}
        if not oracle:
            inputs["generator"] = self.generator()
        label = ("oracle-" if oracle else "gan-") + ("composite-" if composite else "") + shards.label
        return self.add(Stage.make("render", label, params, inputs, runtime, processes=processes))

    def judge(self) -> Stage:
        """The segmenter that judges renders: the baseline run of the first seed (trained on real photos only)."""
        base = next(c for c in self.plan.conditions if c.kind == "baseline")
        return self.train_eval(base, self.plan.seeds[0], None, None)

    def _row_measures(self, row: dict[str, Any], index: int, supp: Stage) -> dict[str, Stage]:
        """The report's inputs about a row's training shards: their quality stage, the filter's own record."""
        inputs: dict[str, Stage] = {}
        if self.plan.quality.get("enabled", True):
            row["quality"] = f"quality{index}"
            inputs[row["quality"]] = self.quality(supp)
        if supp.kind == "filter":
            row["filter"] = f"filter{index}"
            inputs[row["filter"]] = supp
        return inputs

    def _judge_runtime(self) -> dict[str, Any]:
        return {k: self.plan.quality[k] for k in JUDGE_RUNTIME if k in self.plan.quality}

    def filter(self, shards: Stage, factor: float) -> Stage:
        params = {"factor": factor}
        inputs: dict[str, Stage | External] = {"shards": shards, "segmenter": self.judge()}
        label = f"{shards.label}-f{factor:g}"
        return self.add(Stage.make("filter", label, params, inputs, self._judge_runtime()))

    def quality(self, shards: Stage) -> Stage:
        q = self.plan.quality
        params = {k: q.get(k) for k in ("max_images", "max_real", "inception_weights")}
        inputs: dict[str, Stage | External] = {"shards": shards, "segmenter": self.judge()}
        return self.add(Stage.make("quality", shards.label, params, inputs, self._judge_runtime()))

    def train_eval(self, cond: ConditionSpec, seed: int, ratio: float | None, schedule: str | None) -> Stage:
        kind = CONDITIONS[cond.kind]
        overrides: dict[str, Any] = {"seed": seed, **kind.train_overrides(cond)}
        if self.plan.dataset.root is not None:  # the mini-Cityscapes opens as the Cityscapes it is
            overrides.update(label_space=self.plan.dataset.label_space, layout=self.plan.dataset.layout)
        inputs: dict[str, Stage | External] = {"root": self.dataset()}
        label = cond.name
        if kind.supplementary:
            assert ratio is not None and schedule is not None
            supp = kind.data(cond, self, ratio)
            assert supp is not None
            inputs["supp"] = supp
            overrides.update(supp=("-",), schedule=schedule, supp_ratio=ratio if schedule == "mixed" else None)
            label += f"-r{ratio:g}-{schedule}"
        config = segmenter_config(self.plan, overrides)
        runtime = {k: config.pop(k) for k in SEG_RUNTIME}
        for k in ("root", "out", "supp"):
            config.pop(k)
        processes = int(self.plan.segmenter.get("processes", 1))
        meta = {"condition": cond.name, "kind": cond.kind, "ratio": ratio, "schedule": schedule, "seed": seed}
        params = {**config, "processes": processes}
        stage = self.add(Stage.make("train-eval", f"{label}-s{seed}", params, inputs, runtime, meta, processes))
        if stage.meta != meta:
            raise PlanError(self.plan.path, f"conditions: {cond.name!r} trains exactly as {stage.meta['condition']!r}")
        return stage

    def report(self, runs: list[Stage]) -> Stage:
        rows: dict[tuple[str, Any, Any], dict[str, Any]] = {}
        inputs: dict[str, Stage | External] = {"stats": self.stats()}
        for i, run in enumerate(runs):
            m = run.meta
            key = (m["condition"], m["ratio"], m["schedule"])
            row = rows.setdefault(
                key,
                {"name": m["condition"], "kind": m["kind"], "ratio": m["ratio"], "schedule": m["schedule"], "runs": []},
            )
            row["runs"].append({"seed": m["seed"], "input": f"run{i}"})
            inputs[f"run{i}"] = run
            supp = run.inputs.get("supp")
            if isinstance(supp, Stage) and len(row["runs"]) == 1:  # the training shards: the same for every seed
                inputs.update(self._row_measures(row, list(rows).index(key), supp))
        plan = self.plan
        params = {
            "judge": {"condition": "baseline", "seed": plan.seeds[0]},
            "title": plan.title or f"labelforge experiment: {plan.name}",
            "classes": list(plan.classes),
            "baseline": "baseline",
            "rows": list(rows.values()),
            "preview": plan.preview,
            # the dataset's own label space travels resolved: the report stage opens no dataset
            "label_space": plan.label_space.to_dict()
            if plan.dataset.label_space == "auto"
            else plan.dataset.label_space,
        }
        return self.add(Stage.make("report", "report", params, inputs, fixed_dir="report"))


def build_graph(plan: Plan) -> Graph:
    """Every stage of ``plan``, in an order that can run them one after another."""
    g = GraphBuilder(plan)
    g.dataset()
    g.stats()
    runs = []
    for seed in plan.seeds:  # seed by seed: after the first seed every condition has a number
        for cond in plan.conditions:
            if CONDITIONS[cond.kind].supplementary:
                for ratio in plan.ratios:
                    for schedule in plan.schedules:
                        runs.append(g.train_eval(cond, seed, ratio, schedule))
            else:
                runs.append(g.train_eval(cond, seed, None, None))
    report = g.report(runs)
    return Graph(plan=plan, stages=run_order(list(g.stages.values())), runs=runs, report=report)


def run_order(stages: list[Stage]) -> list[Stage]:
    """The stages in an order that runs each after its inputs: of the stages whose inputs are done,
    always the first by :data:`KIND_ORDER`, then by the order they were added (seed by seed)."""
    import heapq

    pos = {s.key: i for i, s in enumerate(stages)}
    waiting = {s.key: {u.key for u in s.upstream if u.key in pos} for s in stages}
    users: dict[str, list[Stage]] = {}
    for s in stages:
        for u in waiting[s.key]:
            users.setdefault(u, []).append(s)
    ready = [(KIND_ORDER[s.kind], pos[s.key]) for s in stages if not waiting[s.key]]
    heapq.heapify(ready)
    out: list[Stage] = []
    while ready:
        stage = stages[heapq.heappop(ready)[1]]
        out.append(stage)
        for user in users.get(stage.key, []):
            waiting[user.key].discard(stage.key)
            if not waiting[user.key]:
                heapq.heappush(ready, (KIND_ORDER[user.kind], pos[user.key]))
    assert len(out) == len(stages), "the stage graph has a cycle"
    return out

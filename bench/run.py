"""Run every benchmark (bench/bench_*.py) and write the figures to a file.

Each module exposes ``run(quick: bool) -> dict[str, float]``. Figures that compare two things are
ratios measured in the same run, because these machines are shared and absolute times are noisy.

Example:
    python -m bench.run --out bench-out            # full run -> bench-out/bench.json
    python -m bench.run --quick --only stats       # one area, small sizes
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover() -> list[str]:
    return sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench-out"), help="folder for bench.json")
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--only", action="append", default=[], help="run only these areas (repeatable)")
    args = ap.parse_args(argv)
    areas = args.only or discover()
    results: dict[str, dict] = {}
    failed = []
    for area in areas:
        print(f"== {area}", flush=True)
        t0 = time.perf_counter()
        try:
            mod = importlib.import_module(f"bench.bench_{area}")
            figures = mod.run(quick=args.quick)
        except Exception:  # a broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(area)
            continue
        figures["bench_seconds"] = round(time.perf_counter() - t0, 2)
        results[area] = figures
        for k, v in figures.items():
            print(f"   {k:<48} {v:.4g}" if isinstance(v, float) else f"   {k:<48} {v}", flush=True)
    report = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(), "cpus": os.cpu_count()},
        "results": results,
        "failed": failed,
    }
    try:
        import torch

        report["machine"]["torch"] = torch.__version__
        report["machine"]["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        pass
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "bench.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, out)
    print(f"wrote {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

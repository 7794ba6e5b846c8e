"""Run every benchmark, print a table of ratios against same-run baselines, write JSON.

    python -m benchmarks            # full sizes (tens of minutes on 2 cores)
    python -m benchmarks --quick    # tiny sizes: keeps the code from rotting (the tests run it)

Full runs also rewrite the README's Performance table (between the bench markers).
"""

import argparse
import datetime
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import suite
from .machine import describe

ROOT = Path(__file__).resolve().parents[1]


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "s":
        return f"{v:.3f} s" if v < 10 else f"{v:.1f} s"
    if unit == "GB":
        return f"{v:.2f} GB"
    if unit == "x":
        return f"{v:.1f}x" if v < 100 else f"{v:,.0f}x"
    return f"{v:,.2f} {unit}"


def table(rows):
    head = ("benchmark", "montage", "baseline (same run)", "ratio", "target", "")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        base = f"{fmt(r.get('baseline'), r['unit'])} ({r['baseline_name']})" if r.get("baseline_name") else "-"
        status = {True: "met", False: "**missed**", None: ""}[r.get("met")]
        lines.append("| " + " | ".join([r["name"], fmt(r["value"], r["unit"]), base,
                                         fmt(r.get("ratio"), "x"), r.get("target", ""), status]) + " |")
    return "\n".join(lines)


def update_readme(text_table, machine, stamp):
    readme = ROOT / "README.md"
    body = readme.read_text()
    gpu = f", {machine['gpu']}" if machine.get("gpu") else ""
    block = (f"<!-- bench:start -->\nLatest full run: {stamp}, {machine['cpu']}, {machine['cores']} cores, "
             f"{machine['memory_gb']} GB{gpu}; Keras {machine['keras']} on {machine['keras_backend']}, "
             f"libvips {machine['libvips']}, numba {machine['numba']}.\n\n{text_table}\n<!-- bench:end -->")
    new, n = re.subn(r"<!-- bench:start -->.*?<!-- bench:end -->", lambda _: block, body, flags=re.S)
    if n:
        readme.write_text(new)
    return bool(n)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes, seconds not minutes")
    p.add_argument("--only", nargs="+", default=None, choices=list(suite.BENCHMARKS),
                   help="run only these benchmarks")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"), help="folder for the JSON")
    p.add_argument("--no-readme", action="store_true", help="do not rewrite the README's table")
    a = p.parse_args(argv)

    machine = describe()
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    work = Path(tempfile.mkdtemp(prefix="montage-bench-"))
    rows, details, failed = [], {}, []
    names = a.only or list(suite.BENCHMARKS)
    try:
        for name in names:
            print(f"[{name}] ...", file=sys.stderr, flush=True)
            t = time.perf_counter()
            try:
                r, d = suite.BENCHMARKS[name](work / name, a.quick)
            except Exception as e:   # one failure (a full disk) must not cost the other results
                if a.quick:
                    raise
                failed.append(name)
                details[name] = {"error": f"{type(e).__name__}: {e}"}
                print(f"[{name}] failed: {details[name]['error']}", file=sys.stderr, flush=True)
                continue
            finally:
                shutil.rmtree(work / name, ignore_errors=True)   # each benchmark's files go when it ends
            rows += r
            details[name] = dict(d, seconds=time.perf_counter() - t)
            print(table(r).split("\n", 2)[2], file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = table(rows)
    print(text)
    result = {"stamp": stamp, "quick": a.quick, "machine": machine, "rows": rows, "details": details}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = ("quick-" if a.quick else "") + re.sub(r"[^a-z0-9]+", "-", (machine.get("gpu") or "cpu").lower())[:30]
    path = out / f"{stamp[:10]}-{tag}.json"
    path.write_text(json.dumps(result, indent=1, default=lambda o: o.item() if isinstance(o, np.generic) else str(o)))
    print(f"results: {path}", file=sys.stderr)
    if failed:
        print(f"failed: {', '.join(failed)} (see the JSON); README.md left as it was", file=sys.stderr)
    elif not a.quick and not a.no_readme and a.only is None and update_readme(text, machine, stamp):
        print("README.md Performance table updated", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())

"""Run the benchmark modules `benchmarks/bench_*.py` (each has a `main()` that prints its table): those whose name
contains an argument, or without arguments every one but `bench_dask` (tens of minutes: `make bench-dask`)."""
import importlib
import pkgutil
import sys
import time

import benchmarks


def main(argv: list[str]) -> int:
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    wanted = [n for n in names if any(a in n for a in argv)] if argv else [n for n in names if n != "bench_dask"]
    for name in wanted:
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        importlib.import_module(f"benchmarks.{name}").main()
        print(f"({name}: {time.perf_counter() - t0:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

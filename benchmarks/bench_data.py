"""Data-pipeline throughput: samples per second of ImageFolder through a DataLoader.

    python benchmarks/bench_data.py --data path/to/imagenette-144
    python benchmarks/bench_data.py --data path/to/imagenette-144 --batches 20 --workers 0 2

For each worker count it times ``imagenette_folder(data, "train", size=128,
reference=...)`` with batch 32 and shuffling, after one warm-up batch (worker start-up
excluded), with and without the on-the-fly reference, and prints the ratio. Timings
depend on the machine and on what else runs on it; the machine is printed with them.
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.utils.data import DataLoader

from sscn.io.data import imagenette_folder
from machine import describe  # benchmarks/machine.py, beside this script


def samples_per_second(dataset, workers: int, batch_size: int, batches: int) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0), persistent_workers=False)
    iterator = iter(loader)
    next(iterator)  # warm-up: worker start-up and first decode
    start, seen = time.perf_counter(), 0
    for _ in range(batches):
        try:
            batch = next(iterator)
        except StopIteration:
            break
        seen += batch["gray_l"].shape[0]
    return seen / (time.perf_counter() - start)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="Imagenette-style root holding train/ and val/")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=30, help="timed batches per setting")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--reference", default="tps")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads in the main process (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"{describe('cpu', torch.get_num_threads())} (intra-op, in the main process), torch {torch.__version__}")
    plain = imagenette_folder(args.data, "train", size=args.size)
    with_ref = imagenette_folder(args.data, "train", size=args.size, reference=args.reference)
    print(f"{len(with_ref)} train images at {args.size} px, batch {args.batch_size}, {args.batches} batches timed")
    for workers in args.workers:
        rate_plain = samples_per_second(plain, workers, args.batch_size, args.batches)
        rate_ref = samples_per_second(with_ref, workers, args.batch_size, args.batches)
        print(f"num_workers={workers}: {rate_ref:7.1f} samples/s with reference={args.reference!r}, "
              f"{rate_plain:7.1f} without (ratio {rate_ref / rate_plain:.2f})", flush=True)


if __name__ == "__main__":
    main()

"""Data-parallel training against one process, on MNIST: seconds per epoch.

Run it twice, side by side in time, nothing else heavy running::

    OMP_WAIT_POLICY=PASSIVE python benchmarks/bench_distributed.py --threads 2
    OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1 torchrun --standalone \\
        --nproc-per-node 2 benchmarks/bench_distributed.py --threads 1

Each fits ``VaDEClustering(n_clusters=10, pretrain_epochs=2, max_epochs=3,
init_params="gmm", random_state=0)`` on the 70,000 MNIST digits (pixels / 255,
float32): few epochs, because the question is the cost of an epoch, and the
paper's start, because the UMAP start runs in process 0 alone either way. Process
0 prints one JSON line: the mode, wall seconds, seconds per pretraining and per
joint epoch, the phases' seconds and the accuracy (labels only score).
"""

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from sklearn_vade import VaDEClustering, cluster_accuracy

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    distributed = "LOCAL_RANK" in os.environ  # launched by torchrun
    if distributed:
        torch.distributed.init_process_group("gloo")
    with np.load(args.data) as data:
        X, y = (data["X"] / np.float32(255)).astype(np.float32), data["y"]
    warnings.simplefilter("ignore")
    start = time.perf_counter()
    model = VaDEClustering(n_clusters=10, pretrain_epochs=2, max_epochs=3,
                           init_params="gmm", random_state=0).fit(X)
    wall = time.perf_counter() - start
    world = torch.distributed.get_world_size() if distributed else 1
    if not distributed or torch.distributed.get_rank() == 0:
        print(json.dumps({
            "mode": f"{world} process(es) x {args.threads} thread(s)",
            "wall_s": round(wall, 1),
            "pretrain_s_per_epoch": round(model.timings_["pretraining"] / 2, 2),
            "train_s_per_epoch": round(model.timings_["training"] / model.n_iter_, 2),
            "timings": {k: round(v, 1) for k, v in model.timings_.items()},
            "acc": round(cluster_accuracy(y, model.labels_), 3),
            "cpu": torch.backends.cpu.get_cpu_capability()}), flush=True)
    if distributed:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()

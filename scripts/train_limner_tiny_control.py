#!/usr/bin/env python3
"""Train limner-tiny-control, the canny ControlNet shipped in ``src/limner/weights/limner-tiny-control``.

Usage (the data comes from ``scripts/build_emoji_dataset.py``; one CPU thread, about 30 minutes):

    python scripts/train_limner_tiny_control.py --data .cache/emoji-dataset \\
        --base src/limner/weights/limner-tiny --out src/limner/weights/limner-tiny-control \\
        --work .cache/control-train --steps 3000 --threads 1

Calling it again with the same ``--work`` resumes where it stopped.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from limner.training.control import ControlTrainConfig, train_control


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path(".cache/emoji-dataset"))
    parser.add_argument("--base", type=Path, default=Path("src/limner/weights/limner-tiny"))
    parser.add_argument("--out", type=Path, default=Path("src/limner/weights/limner-tiny-control"))
    parser.add_argument("--work", type=Path, default=Path(".cache/control-train"))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--checkpoint-every", type=int, default=250)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = ControlTrainConfig(data=args.data, base=args.base, out=args.out, work=args.work, steps=args.steps,
                             batch_size=args.batch, learning_rate=args.lr, checkpoint_every=args.checkpoint_every,
                             limit=args.limit, progress=False)  # fmt: skip
    train_control(cfg)


if __name__ == "__main__":
    main()

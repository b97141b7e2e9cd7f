"""Run by the distributed test under torchrun: one short gan-train or train, then each rank
reports its summary (with a digest of its parameters) into REPORT_DIR/rank<k>.json."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)


def main() -> None:
    kind, data_dir, run_dir, report_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    os.environ["AUGMENT_QUIET"] = "1"
    from augment.core.readers import load_dataset
    from tests.conftest import tiny_classifier_config, tiny_gan_config

    ds = load_dataset(data_dir)
    if kind == "gan":
        from gan.train import train_gan

        cfg = tiny_gan_config(ds, 4, batch_size=8, log_every=1, sample_every=4, checkpoint_every=2)
        summary = train_gan(ds, run_dir, cfg, progress=False)
    else:
        from classifier.train import train_classifier

        cfg = tiny_classifier_config(epochs=2, batch_size=8, epoch_samples=32)
        summary = train_classifier(ds, run_dir, cfg, progress=False)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / f"rank{summary['rank']}.json").write_text(json.dumps(summary))


if __name__ == "__main__":
    main()

"""Pictures of GAN training: loss curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_losses(records: list[dict[str, Any]], path: Path) -> None:
    """D and G loss (and D's mean logits on real/fake) against step."""
    if not records:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from augment.core.atomic import save_figure

    steps = [r["step"] for r in records]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.5))
    a1.plot(steps, [r["d_loss"] for r in records], label="D loss", lw=1)
    a1.plot(steps, [r["g_loss"] for r in records], label="G loss", lw=1)
    a1.set_xlabel("step")
    a1.set_title("losses")
    a1.legend()
    a2.plot(steps, [r["d_real"] for r in records], label="D(real)", lw=1)
    a2.plot(steps, [r["d_fake"] for r in records], label="D(fake)", lw=1)
    a2.set_xlabel("step")
    a2.set_title("discriminator outputs")
    a2.legend()
    for a in (a1, a2):
        a.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    save_figure(path, fig)

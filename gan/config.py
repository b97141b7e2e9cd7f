"""GAN training settings and the named recipes we measured."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from augment.core.checks import Rule, at_least, below_one, check_class_names, check_rules, one_of, positive
from augment.core.errors import UserError

SIZES = (32, 48, 64, 96, 128)  # image sizes the generator and discriminator are built for
# Which generator of a run generate, rebalance, gan-eval and compare load: "best" (best.pt, the best on the
# validation split; the last checkpoint when selection never ran) or "last" (checkpoint.pt).
CHECKPOINT_CHOICES = ("best", "last")


def check_checkpoint(choice: str) -> None:
    """``--checkpoint``: which of a run's checkpoints to use."""
    if choice not in CHECKPOINT_CHOICES:
        raise UserError(f"--checkpoint {choice}: use {' or '.join(CHECKPOINT_CHOICES)}")


DEFAULT_CHECKPOINT = "best"
EVAL_PER_CLASS = 200  # samples per class gan-eval scores (and rebalance's CAS when it measures one)
ADA_IMAGES = 100_000  # real images over which ADA can move the colour probability from 0 to 1
ADA_INTERVAL = 4  # steps between ADA's adjustments of the colour probability
EVAL_SEED = 12345  # gan-eval's sample seed; GanConfig.select_seed is selection's, and they must differ
# Options whose default changed after they were added: what a run from before the option existed did.
BEFORE_OPTIONS: dict[str, Any] = {"color_p": 1.0, "ms_weight": 0.0, "lecam_weight": 0.0}
EVAL_CAS_SEEDS = 3  # sample seeds gan-eval's CAS macro-F1 is given over (EVAL_SEED and the next ones)


@dataclass
class GanConfig:
    steps: int = 6000
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.0
    beta2: float = 0.99
    size: int = 48
    channels: int = 1
    z_dim: int = 128
    g_width: int = 32
    d_width: int = 32
    cond_bn: bool = False
    conditioning: str = "projection"  # or "concat"
    spectral_norm: bool = True
    d_head: str = "flatten"  # or "sum" (global sum pooling)
    minibatch_std: bool = True
    d_batchnorm: bool = False
    loss: str = "hinge"  # or "bce"
    diffaugment: str = "color,translation,cutout"  # "" turns it off
    # Share of real and fake faces that get the colour ops (brightness, saturation, contrast); below about 0.8
    # they no longer leak into G (ADA). With ada_target > 0 this is only where p starts. 0.5 since 2026-11-29,
    # with ms_weight (below); runs from before the option coloured every face (BEFORE_OPTIONS).
    color_p: float = 0.5
    # ADA's overfitting heuristic (Karras et al. 2020): every ADA_INTERVAL steps p moves toward keeping
    # E[sign D(real)] at this target (ADA used 0.6), able to cross 0 to 1 in ADA_IMAGES real images; 0 = fixed p.
    ada_target: float = 0.0
    # LeCam regularisation of D (Tseng et al. 2021, for GANs on limited data): weight of the pull of D's real
    # and fake outputs toward the moving averages of the other; 0 = off (they used 0.3 beside DiffAugment).
    # On by default since 2026-11-29, on top of color_p 0.5 and ms_weight 0.5: on FER2013 (6,000 steps, best
    # checkpoint, 500 samples per class) mean assignment rose from 0.433 to 0.571 (every class at least 0.8 x
    # the judge's recall), CAS macro-F1 from 0.285 to 0.318 (real faces: 0.317), while sample recall fell
    # from 0.61-0.80 to 0.45-0.70 (README, "LeCam on top of mode seeking").
    lecam_weight: float = 0.3
    # Transitional conditioning (Shahbazi et al. 2022): D's class terms (projection and AC-GAN loss) ramp
    # linearly from 0 to full over this many steps, so G first learns faces, then classes; 0 = from step 0.
    cond_ramp: int = 0
    # Mode seeking (Mao et al. 2019, MSGAN, for conditional GANs that ignore their noise): G's batch comes in
    # pairs (two noises, one class) and G's loss gains this weight / (pair's image distance / noise distance);
    # 0 = off. Against the demo's one-face-per-class collapse. On by default since 2026-11-29: with color_p 0.5,
    # on FER2013 (6,000 steps, best checkpoint, 500 samples per class) sample recall rose from 0.07-0.18 to
    # 0.61-0.80 in every class, CAS macro-F1 from 0.197 to 0.285 (3 sample seeds), mean assignment from 0.397
    # to 0.433, and KID fell in every class, against color_p 1 and no mode seeking (README, "judged alike").
    ms_weight: float = 0.5
    # Exposure normalisation: G learns faces with their own brightness and contrast removed, and each sample
    # takes the (mean, spread) of a real face of its class, so the noise cannot set exposure (issue 13's banding).
    exposure_norm: bool = False
    balanced: bool = True
    flip: bool = True
    # AC-GAN class loss on top of projection: measured on FER2013 (30 CPU-minutes, judge trained on
    # real faces), it raised the share of samples assigned to their class from 0.47 to 0.52 on average
    # (fear 0.14 -> 0.36, disgust 0.44 -> 0.63) and lowered the per-class Fréchet distance.
    aux_weight: float = 1.0  # 0 turns it off
    ema: float = 0.999  # 0 turns the EMA generator off
    d_steps: int = 1
    seed: int = 0
    classes: list[str] = field(default_factory=list)
    recipe: str = "full"
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA
    channels_last: bool = True  # faster on CUDA and, for ConvTranspose2d, on CPU too
    sample_every: int = 500
    checkpoint_every: int = 250
    log_every: int = 25
    max_minutes: float = 0.0  # 0: no time limit
    # The validation split the generator never trains on (carved from train, subject- and duplicate-aware,
    # when the data has none); CAS, best-checkpoint selection and rebalance gating test on it.
    val_fraction: float = 0.1
    # Best checkpoint: every N steps the EMA generator is scored on the validation split (per-class judge
    # assignment and recall) and best.pt keeps the best so far; 0 switches selection off.
    select_every: int = 500
    select_per_class: int = 100  # samples per class drawn at each selection
    select_seed: int = 424242  # their sample seed; gan-eval reports with another, so selection never grades itself
    judge: str = ""  # a classifier run that scores selection; '' trains the grading judge into RUN/judge-grading

    # What a resume may change: how far to train, how often to log, sample, select and checkpoint, where and how
    # fast to run, and the data's path (its fingerprint must stay). Every other setting is the run's:
    # a learning rate too, since the optimizer state brings back the old one.
    RESUMABLE = (
        "steps",
        "sample_every",
        "checkpoint_every",
        "log_every",
        "select_every",
        "max_minutes",
        "device",
        "amp",
        "channels_last",
        "data",
    )

    def validate(self) -> None:
        """Refuse, in one line naming the option, a setting training cannot run with; ``gan-train`` and
        ``train_gan`` call it before anything is read or written."""
        check_rules(self, _RULES)
        check_class_names(self.classes)
        from gan.diffaugment import parse_policy

        try:
            policy = parse_policy(self.diffaugment)
        except ValueError as e:
            raise UserError(f"--diffaugment {self.diffaugment}: {e}") from e
        self._check_no_op_options(policy)

    def _check_no_op_options(self, policy: list[str]) -> None:
        """Refuse an option that would silently do nothing with the other settings."""
        defaults = {f.name: f.default for f in fields(self)}
        for name in ("color_p", "ada_target"):  # moot at their defaults; a value the user chose would be lost
            value = getattr(self, name)
            if value != defaults[name] and "color" not in policy:
                flag = "--" + name.replace("_", "-")
                raise UserError(f"{flag} {value:g} acts on DiffAugment's colour ops: add color to --diffaugment")
        if self.cond_ramp > 0 and self.conditioning == "concat" and self.aux_weight <= 0:
            raise UserError(
                f"--cond-ramp {self.cond_ramp} ramps D's projection and AC-GAN terms: with --conditioning concat and "
                "no --aux-weight there is nothing to ramp"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def before_options(cls) -> dict[str, Any]:
        """What a setting that a run's config.json lacks was: the value from before the option existed,
        which is today's default unless the default has changed since (``BEFORE_OPTIONS``)."""
        return {**cls().to_dict(), **BEFORE_OPTIONS}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GanConfig:
        """The settings a run's config.json records; one it lacks takes its value from before the option."""
        names = {f.name for f in fields(cls)}
        return cls(**{**BEFORE_OPTIONS, **{k: v for k, v in d.items() if k in names}})


_EVERY = "use a number of steps, at least 1"
_RULES: tuple[Rule, ...] = (
    ("recipe", lambda v: v in RECIPES, "use full or classic"),
    ("steps", at_least(1), "train at least 1 step"),
    ("batch_size", at_least(2), "use at least 2 images per batch"),
    ("lr_g", positive, "use a learning rate above 0, e.g. 2e-4"),
    ("lr_d", positive, "use a learning rate above 0, e.g. 2e-4"),
    ("beta1", below_one, "use an Adam beta from 0 up to (not including) 1"),
    ("beta2", below_one, "use an Adam beta from 0 up to (not including) 1"),
    ("size", one_of(*SIZES), f"the GAN supports {', '.join(map(str, SIZES))}"),
    ("channels", one_of(1, 3), "use 1 (grayscale) or 3 (RGB)"),
    ("z_dim", at_least(1), "use a noise size of at least 1"),
    ("g_width", at_least(1), "use a base width of at least 1"),
    ("d_width", at_least(1), "use a base width of at least 1"),
    ("conditioning", one_of("projection", "concat"), "use projection or concat"),
    ("d_head", one_of("flatten", "sum"), "use flatten or sum"),
    ("loss", one_of("hinge", "bce"), "use hinge or bce"),
    ("aux_weight", at_least(0), "use a weight of 0 (off) or more"),
    ("color_p", lambda v: 0 <= v <= 1, "use a probability from 0 to 1, e.g. 0.5"),
    ("ada_target", lambda v: 0 <= v < 1, "use 0 (fixed --color-p) or a target below 1, e.g. 0.6"),
    ("lecam_weight", at_least(0), "use a weight of 0 (off) or more, e.g. 0.3"),
    ("cond_ramp", at_least(0), "use a number of steps, or 0 for full conditioning from the start"),
    ("ms_weight", at_least(0), "use a weight of 0 (off) or more, e.g. 1"),
    ("ema", below_one, "use a decay from 0 (off) up to (not including) 1, e.g. 0.999"),
    ("d_steps", at_least(1), "use at least 1 discriminator step per generator step"),
    ("sample_every", at_least(1), _EVERY),
    ("checkpoint_every", at_least(1), _EVERY),
    ("log_every", at_least(1), _EVERY),
    ("max_minutes", at_least(0), "use a number of minutes, or 0 for no limit"),
    ("val_fraction", below_one, "use a share from 0 (no validation split) up to (not including) 1, e.g. 0.1"),
    ("select_every", at_least(0), "use a number of steps, or 0 to switch best-checkpoint selection off"),
    ("select_per_class", at_least(1), "draw at least 1 sample per class"),
    ("select_seed", lambda v: isinstance(v, int) and v != EVAL_SEED, f"use a seed other than gan-eval's {EVAL_SEED}"),
)

RECIPES: dict[str, dict[str, Any]] = {
    # Our defaults: cheap SN/projection networks, hinge loss, DiffAugment, class-balanced batches, EMA.
    "full": {},
    # The textbook conditional DCGAN: label maps concatenated to D's input, BCE, no SN,
    # no DiffAugment, natural class frequencies, Adam(0.5, 0.999), no EMA.
    "classic": {
        "ms_weight": 0.0,
        "lecam_weight": 0.0,
        "loss": "bce",
        "conditioning": "concat",
        "spectral_norm": False,
        "d_batchnorm": True,
        "minibatch_std": False,
        "diffaugment": "",
        "balanced": False,
        "flip": False,
        "aux_weight": 0.0,
        "ema": 0.0,
        "beta1": 0.5,
        "beta2": 0.999,
        "g_width": 64,
        "d_width": 64,
    },
}


@dataclass
class CasConfig:
    """The small classifier of the classification accuracy score (Ravuri & Vinyals 2019): trained once on
    generated faces only and once on as many real training faces, each tested on the real validation faces."""

    model: str = "simple-cnn"
    width: float = 0.5
    epochs: int = 15
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def recipe_config(recipe: str, **overrides: Any) -> GanConfig:
    if recipe not in RECIPES:
        raise UserError(f"--recipe {recipe}: use one of {', '.join(RECIPES)}")
    base = {**RECIPES[recipe], "recipe": recipe}
    base.update({k: v for k, v in overrides.items() if v is not None})
    return GanConfig(**base)


def steps_for_epochs(epochs: float, n_train: int, batch_size: int) -> int:
    """``gan-train --epochs``: the generator steps that make ``epochs`` passes over ``n_train`` images."""
    if not positive(epochs):
        raise UserError(f"--epochs {epochs:g}: give a number of passes above 0, e.g. 50")
    return max(1, round(epochs * n_train / batch_size))

"""GAN training settings and the named recipes we measured."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from augment.core.checks import Rule, at_least, below_one, check_class_names, check_rules, one_of, positive
from augment.core.errors import UserError
from augment.core.limits import LIMIT_HELP
from classifier.config import CLASSES_HELP, DEVICE_HELP

SIZES = (32, 48, 64, 96, 128)  # image sizes the generator and discriminator are built for
# Which generator of a run generate, rebalance, gan-eval and compare load: "best" (best.pt, the best on the
# validation split; the last checkpoint when selection never ran) or "last" (checkpoint.pt).
CHECKPOINT_CHOICES = ("best", "last")
CHECKPOINT_HELP = "best (the generator best on the validation split; the last one when the run has no best.pt) or last."


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
UPSAMPLES = ("transposed", "nearest")  # the transfer generator's decoder upsampling (gan.transfer_models)
BEFORE_OPTIONS: dict[str, Any] = {"color_p": 1.0, "ms_weight": 0.0, "lecam_weight": 0.0}
EVAL_CAS_SEEDS = 3  # sample seeds gan-eval's CAS macro-F1 is given over (EVAL_SEED and the next ones)


@dataclass
class GanConfig:
    """The settings of a GAN run. A field with ``help`` metadata is a ``gan-train`` option (``augment.cli.options``);
    ``unset: recipe`` leaves it to the recipe unless given, ``unset: data`` to DATA's image shape."""

    steps: int = field(default=6000, metadata={"help": "Generator steps to train to", "unset": "recipe"})
    batch_size: int = field(default=64, metadata={"help": "Global batch size", "unset": "recipe"})
    lr_g: float = field(default=2e-4, metadata={"help": "Generator learning rate", "unset": "recipe"})
    lr_d: float = field(default=2e-4, metadata={"help": "Discriminator learning rate", "unset": "recipe"})
    beta1: float = 0.0
    beta2: float = 0.99
    size: int = field(
        default=48, metadata={"help": f"Image size: {', '.join(map(str, SIZES[:-1]))} or {SIZES[-1]}", "unset": "data"}
    )
    channels: int = field(default=1, metadata={"help": "1 (grayscale) or 3 (RGB)", "unset": "data"})
    z_dim: int = 128
    g_width: int = field(default=32, metadata={"help": "Generator base width", "unset": "recipe"})
    d_width: int = field(default=32, metadata={"help": "Discriminator base width", "unset": "recipe"})
    cond_bn: bool = field(default=False, metadata={"help": "Class-conditional BN in G", "unset": "recipe"})
    conditioning: str = field(
        default="projection", metadata={"help": "projection or concat (label maps)", "unset": "recipe"}
    )
    spectral_norm: bool = field(default=True, metadata={"help": "Spectral norm in D", "unset": "recipe"})
    d_head: str = "flatten"  # or "sum" (global sum pooling)
    minibatch_std: bool = True
    d_batchnorm: bool = False
    loss: str = field(default="hinge", metadata={"help": "hinge or bce", "unset": "recipe"})
    diffaugment: str = field(
        default="color,translation,cutout",
        metadata={"help": "DiffAugment policy, e.g. 'color,translation,cutout'; '' = off", "unset": "recipe"},
    )
    # Share of real and fake faces that get the colour ops (brightness, saturation, contrast); below about 0.8
    # they no longer leak into G (ADA). With ada_target > 0 this is only where p starts. Runs that predate the
    # option coloured every face (BEFORE_OPTIONS).
    color_p: float = field(
        default=0.5,
        metadata={"help": "Share of faces DiffAugment's colour ops touch (below ~0.8: no leak)", "unset": "recipe"},
    )
    # ADA's overfitting heuristic (Karras et al. 2020): every ADA_INTERVAL steps p moves toward keeping
    # E[sign D(real)] at this target (ADA used 0.6), able to cross 0 to 1 in ADA_IMAGES real images; 0 = fixed p.
    ada_target: float = field(
        default=0.0,
        metadata={"help": "Adapt --color-p to keep E[sign D(real)] at this (ADA: 0.6; 0 = off)", "unset": "recipe"},
    )
    # LeCam regularisation of D (Tseng et al. 2021, for GANs on limited data): weight of the pull of D's real
    # and fake outputs toward the moving averages of the other; 0 = off (they used 0.3 beside DiffAugment).
    lecam_weight: float = field(
        default=0.3, metadata={"help": "LeCam regularisation of D (0 = off; e.g. 0.3)", "unset": "recipe"}
    )
    # Transitional conditioning (Shahbazi et al. 2022): D's class terms (projection and AC-GAN loss) ramp
    # linearly from 0 to full over this many steps, so G first learns faces, then classes; 0 = from step 0.
    cond_ramp: int = field(
        default=0, metadata={"help": "Ramp D's class terms in over N steps (transitional; 0 = off)", "unset": "recipe"}
    )
    # Mode seeking (Mao et al. 2019, MSGAN, for conditional GANs that ignore their noise): G's batch comes in
    # pairs (two noises, one class) and G's loss gains this weight / (pair's image distance / noise distance);
    # 0 = off. Against a collapse to one face per class.
    ms_weight: float = field(
        default=0.5,
        metadata={"help": "Mode seeking: pairs of noises of one class drawn apart (0 = off)", "unset": "recipe"},
    )
    # Exposure normalisation: G learns faces with their own brightness and contrast removed, and each sample
    # takes the (mean, spread) of a real face of its class, so the noise cannot set exposure (against banding).
    exposure_norm: bool = field(
        default=False,
        metadata={"help": "G learns faces of one exposure; samples take real faces' (per class)", "unset": "recipe"},
    )
    balanced: bool = field(
        default=True,
        metadata={"help": "Class-balanced real batches", "unset": "recipe", "option": "--balanced/--natural"},
    )
    flip: bool = True
    # AC-GAN class loss on top of projection.
    aux_weight: float = field(
        default=1.0, metadata={"help": "Weight of an AC-GAN class loss (0 = off)", "unset": "recipe"}
    )
    ema: float = field(
        default=0.999, metadata={"help": "EMA decay of the sampling generator (0 = off)", "unset": "recipe"}
    )
    d_steps: int = field(default=1, metadata={"help": "Discriminator steps per generator step", "unset": "recipe"})
    seed: int = field(default=0, metadata={"help": "Random seed."})
    classes: list[str] = field(default_factory=list, metadata={"help": CLASSES_HELP, "kind": "classes"})
    limit: dict[str, int] = field(default_factory=dict, metadata={"help": LIMIT_HELP, "kind": "limit"})
    recipe: str = field(
        default="full",
        metadata={
            "help": "full (ours), classic (textbook cDCGAN) or transfer (expression transfer); options below override."
        },
    )
    device: str = field(default="auto", metadata={"help": DEVICE_HELP})
    amp: bool = field(default=True, metadata={"help": "bf16 autocast on CUDA."})
    channels_last: bool = True  # faster on CUDA and, for ConvTranspose2d, on CPU too
    sample_every: int = field(default=500, metadata={"help": "Write a sample grid every N steps."})
    checkpoint_every: int = field(default=250, metadata={"help": "Write a checkpoint every N steps."})
    log_every: int = field(default=25, metadata={"help": "Log losses and images/s to metrics.jsonl every N steps."})
    max_minutes: float = field(
        default=0.0, metadata={"help": "Stop (and checkpoint) after this many minutes; 0 = no limit."}
    )
    # The validation split the generator never trains on (carved from train, subject- and duplicate-aware,
    # when the data has none); CAS, best-checkpoint selection and rebalance gating test on it.
    val_fraction: float = field(
        default=0.1,
        metadata={
            "help": "Share of train held out as the validation split the generator never sees (if DATA has none)."
        },
    )
    # Best checkpoint: every N steps the EMA generator is scored on the validation split (per-class judge
    # assignment and recall) and best.pt keeps the best so far.
    select_every: int = field(
        default=500,
        metadata={
            "help": "Score the generator on the validation split every N steps and keep the best as best.pt (0 = off)."
        },
    )
    select_per_class: int = field(default=100, metadata={"help": "Samples per class scored at each selection."})
    select_seed: int = 424242  # their sample seed; gan-eval reports with another, so selection never grades itself
    judge: str = field(
        default="",
        metadata={
            "help": "An 'augment train' run that scores selection (default: train the grading judge in RUN_DIR).",
            "kind": "path",
        },
    )
    # The transfer recipe (expression transfer, StarGAN-shaped: G(face, target class)); 0 in the noise recipes.
    cycle_weight: float = field(
        default=0.0, metadata={"help": "Transfer: L1 of G(G(x, target), source) to x (cycle)", "unset": "recipe"}
    )
    identity_weight: float = field(
        default=0.0, metadata={"help": "Transfer: L1 of G(x, source) to x (identity)", "unset": "recipe"}
    )
    cls_weight: float = field(
        default=0.0,
        metadata={"help": "Transfer: weight of D's class loss (real) and G's (translated)", "unset": "recipe"},
    )
    r1_weight: float = field(
        default=0.0, metadata={"help": "Transfer: R1 penalty on D's real faces (gamma)", "unset": "recipe"}
    )
    mask_weight: float = field(
        default=0.0,
        metadata={"help": "Transfer: pull of G's attention mask toward keeping the input", "unset": "recipe"},
    )
    res_blocks: int = field(
        default=0, metadata={"help": "Transfer: residual blocks at a quarter of the size", "unset": "recipe"}
    )
    upsample: str = field(
        default="transposed",
        metadata={
            "help": "Transfer: G's decoder, 'nearest' (nearest-neighbour upsampling then a 3×3 conv) or "
            "'transposed' (4×4 stride-2 transposed convs, as StarGAN: dotted stripes where G paints)",
            "unset": "recipe",
        },
    )
    guide_weight: float = field(
        default=0.0,
        metadata={
            "help": "Transfer: weight of a frozen real-only classifier's loss on G's translations as the target "
            "(--guide)",
            "unset": "recipe",
        },
    )
    guide: str = field(
        default="",
        metadata={
            "help": "Transfer: the 'augment train' run that guides G (default: train a fer-cnn guide in RUN_DIR; "
            "never the --judge that grades it).",
            "kind": "path",
        },
    )

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
        if self.guide and self.judge and Path(self.guide).resolve() == Path(self.judge).resolve():
            raise UserError(
                f"--guide and --judge are both {self.guide}: G would be scored by the classifier it learns from"
            )

    def _check_no_op_options(self, policy: list[str]) -> None:
        """Refuse an option that would silently do nothing with the other settings."""
        defaults = {f.name: f.default for f in fields(self)}
        for name in ("color_p", "ada_target"):  # moot at their defaults; a value the user chose would be lost
            value = getattr(self, name)
            if value != defaults[name] and "color" not in policy:
                flag = "--" + name.replace("_", "-")
                raise UserError(f"{flag} {value:g} acts on DiffAugment's colour ops: add color to --diffaugment")
        self._check_recipe_options()
        if self.cond_ramp > 0 and self.conditioning == "concat" and self.aux_weight <= 0:
            raise UserError(
                f"--cond-ramp {self.cond_ramp} ramps D's projection and AC-GAN terms: with --conditioning concat and "
                "no --aux-weight there is nothing to ramp"
            )

    def _check_recipe_options(self) -> None:
        """Refuse a transfer-only option in a noise recipe, and a noise-only option in the transfer recipe."""
        transfer = self.recipe == TRANSFER
        own = {f.name: f.default for f in fields(self)} | (RECIPES[TRANSFER] if transfer else {})
        names = NOISE_ONLY if transfer else TRANSFER_ONLY
        for name in names:
            value = getattr(self, name)
            if value != own[name]:
                flag = "--" + name.replace("_", "-")
                where = "the noise recipes (full, classic)" if transfer else "--recipe transfer"
                raise UserError(f"{flag} {value}: only {where} use it; leave it out or change --recipe")
        if transfer and self.res_blocks < 1:
            raise UserError(f"--res-blocks {self.res_blocks}: the transfer generator needs at least 1")

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
    ("recipe", lambda v: v in RECIPES, "use full, classic or transfer"),
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
    ("upsample", one_of(*UPSAMPLES), f"use {' or '.join(UPSAMPLES)}"),
    ("loss", one_of("hinge", "bce"), "use hinge or bce"),
    ("aux_weight", at_least(0), "use a weight of 0 (off) or more"),
    ("color_p", lambda v: 0 <= v <= 1, "use a probability from 0 to 1, e.g. 0.5"),
    ("ada_target", lambda v: 0 <= v < 1, "use 0 (fixed --color-p) or a target below 1, e.g. 0.6"),
    ("lecam_weight", at_least(0), "use a weight of 0 (off) or more, e.g. 0.3"),
    ("cond_ramp", at_least(0), "use a number of steps, or 0 for full conditioning from the start"),
    ("ms_weight", at_least(0), "use a weight of 0 (off) or more, e.g. 1"),
    ("ema", below_one, "use a decay from 0 (off) up to (not including) 1, e.g. 0.999"),
    ("cycle_weight", at_least(0), "use a weight of 0 (off) or more, e.g. 10"),
    ("identity_weight", at_least(0), "use a weight of 0 (off) or more, e.g. 5"),
    ("cls_weight", at_least(0), "use a weight of 0 (off) or more, e.g. 1"),
    ("r1_weight", at_least(0), "use a weight of 0 (off) or more, e.g. 1"),
    ("mask_weight", at_least(0), "use a weight of 0 (off) or more, e.g. 0.1"),
    ("res_blocks", at_least(0), "use a number of blocks, e.g. 4"),
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

TRANSFER = "transfer"  # the expression-transfer recipe: G(face, target class) instead of G(noise, class)
# Options only one family uses: a value other than the recipe's own is refused (GanConfig._check_recipe_options).
TRANSFER_ONLY = (
    "cycle_weight",
    "identity_weight",
    "cls_weight",
    "r1_weight",
    "mask_weight",
    "res_blocks",
    "upsample",
    "guide_weight",
    "guide",
)
NOISE_ONLY = ("ms_weight", "lecam_weight", "cond_ramp", "exposure_norm", "cond_bn", "conditioning", "aux_weight")

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
    # Expression transfer (StarGAN-shaped, gan.transfer_models): an encoder, residual blocks at a quarter of
    # the size and a decoder that paints over its input through an attention mask (GANimation); D has an
    # adversarial and a class head. Cycle and identity losses keep the person; R1 instead of a gradient penalty.
    TRANSFER: {
        "ms_weight": 0.0,
        "lecam_weight": 0.0,
        "aux_weight": 0.0,
        "cycle_weight": 10.0,
        "identity_weight": 5.0,
        "cls_weight": 1.0,
        "r1_weight": 1.0,
        "mask_weight": 0.1,
        "res_blocks": 4,
        "upsample": "nearest",  # transposed convs painted dotted stripes (docs/generator.md)
        "guide_weight": 1.0,
        "lr_g": 1e-4,
        "lr_d": 1e-4,
        "beta1": 0.5,
        "beta2": 0.999,
        "d_width": 64,
        "steps": 700,  # about the wall time of the full recipe's 6,000 steps on a 2-core CPU (docs/generator.md)
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

"""Frozen configuration of the OASIS generator and discriminator, and its two presets.

``OasisConfig`` carries the architecture and the OASIS-specific loss settings; the schedule,
batch, size, seed and precision come from the generator trainer's ``TrainConfig`` like for
pix2pixHD, so both architectures run under one harness. ``OasisConfig`` answers the same questions
the harness asks of ``GeneratorConfig`` (``input_nc``, ``size_multiple``) and names itself with
``arch = "oasis"``, which is how a checkpoint says which networks to rebuild.

Example:
    >>> from labelforge.gan.oasis.config import get_oasis_preset
    >>> arch, train = get_oasis_preset("cityscapes")
    >>> arch.channels_g, arch.num_res_blocks, (train.height, train.width)
    (64, 6, (256, 512))
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import LabelforgeError
from ..config import TrainConfig

__all__ = ["OasisConfig", "OASIS_PRESETS", "get_oasis_preset", "G_WIDTHS", "D_WIDTHS"]

# Channel multipliers of OASIS (models/generator.py, models/discriminator.py): the generator's
# blocks go 16ch, 16ch, 16ch, 8ch, 4ch, 2ch, ch from the coarsest latent to the image; the
# discriminator's encoder 2cd, 2cd, 4cd, 4cd, 8cd, 8cd (128..512 for cd = 64) and its decoder ends in cd.
G_WIDTHS = (16, 16, 16, 8, 4, 2, 1)
D_WIDTHS = (2, 2, 4, 4, 8, 8)


@dataclass(frozen=True)
class OasisConfig:
    """OASIS networks and losses; defaults are OASIS's Cityscapes settings (config.py, ``cityscapes``).

    ``num_res_blocks`` SPADE blocks in the generator (the latent is ``H / 2**(n-1)``) and as many
    down and up blocks in the U-Net discriminator (its bottleneck is ``H / 2**n``).
    """

    arch: str = "oasis"
    channels_g: int = 64
    channels_d: int = 64
    num_res_blocks: int = 6
    z_dim: int = 64
    spade_hidden: int = 128
    spade_ks: int = 3
    spectral_norm: bool = True
    init: str = "oasis"  # oasis: Xavier-normal gain 0.02, zero bias | torch: PyTorch's default
    # Instance boundaries as one more label channel for the generator (pix2pixHD and SPADE do on
    # Cityscapes; OASIS does not): composed maps paste cars beside cars, which merge without it.
    instance_boundaries: bool = True
    lr_d_scale: float = 1.0  # discriminator LR / generator LR (OASIS Cityscapes: 4e-4 for both)
    lambda_labelmix: float = 5.0
    ema_decay: float = 0.999
    ema_warmup: bool = True  # decay min(ema_decay, (1+t)/(10+t)): short runs average no random init
    class_balance: bool = True
    labelmix: bool = True
    dontcare_ids: tuple[int, ...] = (0,)  # Cityscapes' "unlabeled": weight 0 in the real-class loss
    output_nc: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "dontcare_ids", tuple(int(i) for i in self.dontcare_ids))
        if self.arch != "oasis":
            raise LabelforgeError(f"oasis config: arch must be 'oasis', got {self.arch!r}")
        for name in ("channels_g", "channels_d", "num_res_blocks", "z_dim", "spade_hidden", "spade_ks", "output_nc"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < (0 if name == "z_dim" else 1):
                raise LabelforgeError(f"oasis config: {name} must be a positive integer, got {v!r}")
        if not 2 <= self.num_res_blocks <= len(D_WIDTHS):
            raise LabelforgeError(f"oasis config: num_res_blocks must lie in 2..{len(D_WIDTHS)} (OASIS's widths)")
        if self.init not in ("oasis", "torch"):
            raise LabelforgeError(f"oasis config: init must be oasis or torch, got {self.init!r}")
        if self.spade_ks % 2 == 0:
            raise LabelforgeError("oasis config: spade_ks must be odd")
        if not 0.0 <= self.ema_decay < 1.0 or self.lr_d_scale <= 0 or self.lambda_labelmix < 0:
            raise LabelforgeError("oasis config: ema_decay in [0, 1), lr_d_scale > 0 and lambda_labelmix >= 0")

    def input_nc(self, num_ids: int) -> int:
        """Label channels the generator reads (one-hot + boundary map); the noise comes on top."""
        return num_ids + int(self.instance_boundaries)

    @property
    def size_multiple(self) -> int:
        """Height and width must be multiples of this: the discriminator halves them ``num_res_blocks`` times."""
        return 2**self.num_res_blocks

    @property
    def g_channels(self) -> list[int]:
        """Generator widths, latent first: the last ``num_res_blocks + 1`` of OASIS's list."""
        return [m * self.channels_g for m in G_WIDTHS[-(self.num_res_blocks + 1) :]]

    @property
    def d_channels(self) -> list[int]:
        """Discriminator encoder widths after the image's 3 channels: the first ``num_res_blocks`` of OASIS's."""
        return [m * self.channels_d for m in D_WIDTHS[: self.num_res_blocks]]


@dataclass(frozen=True)
class _Preset:
    generator: OasisConfig
    train: TrainConfig


OASIS_PRESETS: dict[str, _Preset] = {
    # CPU minutes at 64x128 or 128x256: OASIS's block structure with a quarter of its generator widths
    # (ch 16: 256..16 channels), an eighth of the discriminator's (16..64), 8-d noise and 16 hidden
    # SPADE channels (3x3, as OASIS: 1x1 SPADE kernels train into horizontal streaks, measured).
    # PyTorch's default init: with OASIS's the first few hundred steps learn nothing (docs/generator.md).
    "tiny": _Preset(
        OasisConfig(channels_g=16, channels_d=8, num_res_blocks=5, z_dim=8, spade_hidden=16, init="torch"),
        TrainConfig(
            preset="oasis-tiny",
            epochs=10,
            decay_epochs=0,
            batch_size=4,
            lr=4e-4,
            beta1=0.0,
            beta2=0.999,
            height=64,
            width=128,
        ),
    ),  # fmt: skip
    # As OASIS trains Cityscapes: 256x512, ch 64 (G 1024..64), D 128..512, z 64, SPADE 128, 200 epochs of
    # constant LR 4e-4 for both networks, Adam betas (0, 0.999), batch 20, LabelMix 5, EMA 0.999.
    "cityscapes": _Preset(
        OasisConfig(),
        TrainConfig(
            preset="oasis-cityscapes",
            epochs=200,
            decay_epochs=0,
            batch_size=20,
            lr=4e-4,
            beta1=0.0,
            beta2=0.999,
            height=256,
            width=512,
        ),
    ),  # fmt: skip
}


def get_oasis_preset(name: str) -> tuple[OasisConfig, TrainConfig]:
    """The architecture and training defaults of OASIS preset ``name``; unknown names list the valid ones."""
    try:
        p = OASIS_PRESETS[name]
    except KeyError:
        raise LabelforgeError(f"unknown OASIS preset {name!r}; valid: {', '.join(OASIS_PRESETS)}") from None
    return p.generator, p.train

"""One shared encoder, two heads: sentiment (3 classes) and event type (20 topics)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.utils import logging as hf_logging

# Loading a truncated or head-less encoder is intended: keep transformers' load report and
# progress bars out of the worker's log.
hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average the token vectors a mask keeps (how the sentence encoders were trained)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-6)


class MultiTaskModel(nn.Module):
    """A transformer encoder, mean pooling and one linear head per task.

    Args:
        encoder: a transformers encoder (BERT, MPNet ...).
        n_sentiment: classes of the sentiment head.
        n_event: classes of the event head.
    """

    def __init__(
        self, encoder: PreTrainedModel, n_sentiment: int, n_event: int, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.encoder = encoder
        width = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.sentiment = nn.Linear(width, n_sentiment)
        self.event = nn.Linear(width, n_event)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (sentiment logits, event logits) for a padded batch."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask)
        # Pooling and the heads stay fp32 under autocast: they cost nothing next to the
        # encoder, and bf16 heads moved calibrated probabilities by up to 0.02.
        with torch.autocast(input_ids.device.type, enabled=False):
            hidden = out.last_hidden_state.float()
            pooled = self.dropout(mean_pool(hidden, attention_mask))
            return self.sentiment(pooled), self.event(pooled)


def build(
    encoder_dir: str,
    n_sentiment: int,
    n_event: int,
    *,
    pretrained: bool = True,
    layers: int | None = None,
    attn: str = "sdpa",
) -> MultiTaskModel:
    """Build the model on an encoder folder: its weights, or a fresh init of its config.

    Args:
        encoder_dir: a local folder with config.json (and weights when ``pretrained``).
        layers: keep only the first this many transformer layers (tiny test models).
        attn: attention implementation, ``sdpa`` (fused kernels) or ``eager``.
    """
    config: PretrainedConfig = AutoConfig.from_pretrained(encoder_dir, local_files_only=True)
    overrides: dict[str, Any] = {}
    if layers is not None:
        overrides["num_hidden_layers"] = layers
    try:
        encoder = _encoder(encoder_dir, config, pretrained, attn, overrides)
    except ValueError as exc:
        if attn == "eager" or "attention implementation" not in str(exc):
            raise
        # Some encoders (MPNet) have no SDPA kernels in transformers: use plain attention.
        encoder = _encoder(encoder_dir, config, pretrained, "eager", overrides)
    return MultiTaskModel(encoder, n_sentiment, n_event)


def _encoder(
    encoder_dir: str,
    config: PretrainedConfig,
    pretrained: bool,
    attn: str,
    overrides: dict[str, Any],
) -> PreTrainedModel:
    if pretrained:
        model: PreTrainedModel = AutoModel.from_pretrained(
            encoder_dir,
            local_files_only=True,
            attn_implementation=attn,
            add_pooling_layer=False,
            **overrides,
        )
        return model
    for key, value in overrides.items():
        setattr(config, key, value)
    fresh: PreTrainedModel = AutoModel.from_config(  # type: ignore[no-untyped-call]
        config, attn_implementation=attn, add_pooling_layer=False
    )
    return fresh

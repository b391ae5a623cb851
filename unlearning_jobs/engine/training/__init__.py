"""Train causal LMs from scratch: tokenizer, recipe, the resumable loop, and SISA layouts.

Public API::

    train_byte_bpe_tokenizer(*, texts, vocab_size) -> PreTrainedTokenizerFast
    TrainingRecipe.from_dict(dict) / .as_dict() / .load(model_dir) / .save(model_dir)
    train_causal_lm(*, texts, recipe, output_dir, tokenizer=None, progress=None,
                    should_stop=None, checkpoint_dir=None, checkpoint_every=100,
                    device=None, overwrite=False) -> TrainResult
    train_sisa(*, records, recipe, output_dir, shards=8, slices=4, layout=None,
               epochs_per_slice=None, tokenizer=None, progress=None, should_stop=None,
               checkpoint_dir=None, device=None, overwrite=False) -> SisaTrainResult
"""

from .recipe import RECIPE_FILE, TrainingRecipe
from .sisa import SisaLayout, SisaTrainResult, is_sisa_dir, train_sisa
from .tokenizer import EOS_TOKEN, PAD_TOKEN, train_byte_bpe_tokenizer
from .train import CheckpointMismatch, TrainingCancelled, TrainResult, train_causal_lm

__all__ = [
    "RECIPE_FILE",
    "EOS_TOKEN",
    "PAD_TOKEN",
    "CheckpointMismatch",
    "SisaLayout",
    "SisaTrainResult",
    "TrainResult",
    "TrainingCancelled",
    "TrainingRecipe",
    "train_byte_bpe_tokenizer",
    "is_sisa_dir",
    "train_causal_lm",
    "train_sisa",
]

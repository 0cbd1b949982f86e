"""A tiny BERT built from a config and a WordPiece vocabulary (no download), for encoder and pipeline tests."""
from pathlib import Path

import torch
from transformers import BertConfig, BertModel, BertTokenizer

# the adjectives of the pipeline tests' corpus: every one is a token of the vocabulary
WORDS = ("good bad fine awful great poor nice ugly happy sad warm cold bright dark kind cruel calm angry "
         "brave timid").split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "a", "cat", "dog", "sat", "on", "mat", "very", "tax",
         "law", "##s", "##ly", ".", *WORDS]


def bert_tokenizer(folder: Path, **options) -> BertTokenizer:
    """A WordPiece tokenizer over ``VOCAB``, its vocab file written to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    return BertTokenizer(vocab=str(folder / "vocab.txt"), **options)


def build_tiny_bert(folder: Path, seed: int = 0, padding_side: str = "right") -> Path:
    """A random 2-layer BERT of width 32 (64 positions) saved with its tokenizer to ``folder/model``."""
    tokenizer = bert_tokenizer(folder / "vocab", padding_side=padding_side)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=48, max_position_embeddings=64)
    BertModel(config).eval().save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    return folder / "model"

"""Language-modelling data: tokenisation, windows, splits, the SWORD zText decoder, the KJV from Debian."""

import math
import struct
import zlib

import pytest
import torch

from detinit.data import DataError, load_dataset, make_batches, probe_batch
from detinit.data.debian import sha256
from detinit.data.text import (
    KJV_SHA256,
    KJV_TEXT_SHA256,
    decode_ztext,
    fetch_kjv,
    strip_osis,
    text_dataset,
    tokenize,
    unigram_loss,
)

TEXT = "the quick brown fox jumps over the lazy dog. " * 40


def test_windows_are_next_token_pairs_over_the_split():
    train = text_dataset(TEXT, "train", context=8, val_fraction=0.25)
    test = text_dataset(TEXT, "test", context=8, val_fraction=0.25)
    ids, vocab = tokenize(TEXT, "char")
    cut = int(len(TEXT) * 0.75)
    assert train.vocab == test.vocab == vocab == tuple(sorted(set(TEXT)))
    assert len(train) == (cut - 1) // 8 and len(test) == (len(TEXT) - cut - 1) // 8
    flat = ids[:cut]
    assert torch.equal(train.inputs.flatten(), flat[: len(train) * 8])
    assert torch.equal(train.targets.flatten(), flat[1 : len(train) * 8 + 1])
    assert test.decode(test.inputs[0]) == TEXT[cut : cut + 8]
    assert (train.num_classes, train.context) == (len(vocab), 8)


def test_byte_tokenizer_handles_any_text():
    ds = text_dataset("héllo wörld " * 20, "train", context=4, tokenizer="byte")
    assert ds.num_classes == 256 and ds.vocab is None
    assert ds.decode(ds.inputs[0].tolist() + ds.inputs[1].tolist())[:6] == "héllo "  # é is two bytes


def test_unigram_loss_is_the_cross_entropy_of_token_frequencies():
    ds = text_dataset("aab" * 100, "test", context=5, val_fraction=0.5)
    counts = ds.unigram.double() + 1  # add-one smoothed counts of 'a' and 'b' in the training half
    p = counts / counts.sum()
    targets = ds.targets.flatten()
    expected = -(p[targets].log()).mean().item()
    assert unigram_loss(ds) == pytest.approx(expected)
    assert 0 < unigram_loss(ds) < math.log(2)


def test_test_subset_is_evenly_spaced_and_seed_free():
    test = text_dataset(TEXT, "test", context=4, val_fraction=0.5)
    a, b = test.subset(10, seed=0), test.subset(10, seed=5)
    assert torch.equal(a.inputs, b.inputs) and len(a) == 10
    train = text_dataset(TEXT, "train", context=4, val_fraction=0.5)
    assert not torch.equal(train.subset(10, seed=0).inputs, train.subset(10, seed=5).inputs)


def test_bad_text_options_are_reported(tmp_path):
    with pytest.raises(DataError, match="too few for one window of context=512"):
        text_dataset("short text", "train", context=512)
    with pytest.raises(ValueError, match="tokenizer="):
        text_dataset(TEXT, "train", tokenizer="word")
    with pytest.raises(ValueError, match="val_fraction"):
        text_dataset(TEXT, "train", val_fraction=1.0)
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("café ".encode("latin-1") * 100)
    with pytest.raises(DataError, match="not UTF-8.*tokenizer='byte'"):
        load_dataset("text_file", root=bad, context=8)
    assert load_dataset("text_file", root=bad, context=8, tokenizer="byte").num_classes == 256
    with pytest.raises(DataError, match="needs root=PATH"):
        load_dataset("text_file")


def test_text_file_loader(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    train = load_dataset("text_file", "train", root=path, context=16)
    assert train.name == "corpus.txt" and train.decode(train.inputs[0]) == TEXT[:16]


def test_token_batches_are_seeded_and_sharded():
    ds = text_dataset(TEXT, "train", context=8)
    batches = make_batches(ds, 6, shuffle=True, drop_last=True, seed=3)
    first = [x for x, _ in batches.epoch(0)]
    again = [x for x, _ in make_batches(ds, 6, shuffle=True, drop_last=True, seed=3).epoch(0)]
    assert all(torch.equal(a, b) for a, b in zip(first, again)) and first[0].dtype == torch.long
    shards = [next(make_batches(ds, 6, shuffle=True, seed=3, rank=r, world_size=2).epoch(0))[0] for r in (0, 1)]
    assert torch.equal(torch.cat(shards), first[0])
    with pytest.raises(ValueError, match="token windows have no augmentation"):
        make_batches(ds, 6, augment=True)
    assert probe_batch(ds, 4).dtype == torch.long


def _write_ztext(folder, testament, verses_per_block):
    """A zText testament: zlib blocks (.bzz), their index (.bzs), a verse index (.bzv)."""
    bzs, bzv, bzz = b"", b"", b""
    bzv += struct.pack("<IIH", 0, 0, 0)  # an empty entry, as the real modules start
    for b, verses in enumerate(verses_per_block):
        raw = "".join(verses).encode()
        packed = zlib.compress(raw)
        bzs += struct.pack("<III", len(bzz), len(packed), len(raw))
        bzz += packed
        offset = 0
        for verse in verses:
            bzv += struct.pack("<IIH", b, offset, len(verse.encode()))
            offset += len(verse.encode())
    for suffix, data in (("bzs", bzs), ("bzv", bzv), ("bzz", bzz)):
        (folder / f"{testament}.{suffix}").write_bytes(data)


def test_decode_ztext_on_a_generated_module(tmp_path):
    _write_ztext(
        tmp_path,
        "ot",
        [
            ['<title type="main">Book One</title>', 'In the <w lemma="strong:H1">beginning</w>.'],
            ['<div sID="x"/>', 'Second<note placement="foot">a note</note> verse &amp; more.  '],
        ],
    )
    _write_ztext(tmp_path, "nt", [["Last verse."]])
    assert decode_ztext(tmp_path) == "Book One\nIn the beginning.\nSecond verse & more.\nLast verse.\n"
    assert strip_osis("<l>a</l>\n <l>b</l>") == "a b"


def test_kjv_from_debian_is_verified_and_decoded():
    path = fetch_kjv()  # downloads sword-text-kjv once into the cache, then reuses it
    assert sha256(path) == KJV_TEXT_SHA256
    assert all(sha256(path.parent / name) == digest for name, digest in KJV_SHA256.items())
    text = path.read_text(encoding="utf-8")
    assert text.startswith("The First Book of Moses, called Genesis\nIn the beginning God created the heaven")
    assert len(text) == 4_153_412 and text.count("\n") == 31_169
    train, test = load_dataset("kjv", "train", context=256), load_dataset("kjv", "test", context=256)
    assert train.num_classes == test.num_classes == 92
    assert len(train) == (int(len(text) * 0.9) - 1) // 256
    assert unigram_loss(test) == pytest.approx(3.0319, abs=1e-3)  # the bar a language model must clear
    path.write_text("damaged")  # a damaged decoded text is rebuilt from the verified module files
    assert sha256(fetch_kjv()) == KJV_TEXT_SHA256

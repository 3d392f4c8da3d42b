r"""Character- and byte-level language-modelling data: the King James Bible (offline) and a user's text file.

A text is encoded to token ids (``tokenizer="char"``: one id per distinct
character of the whole text, sorted; ``"byte"``: the 256 UTF-8 byte values),
split into a training part (the first ``1 - val_fraction``) and a validation
part (the rest; the ``"test"`` split), and cut into non-overlapping windows
of ``context`` tokens. Window ``i`` has inputs ``ids[iT : (i+1)T]`` and
targets ``ids[iT+1 : (i+1)T+1]``.

**KJV** (``"kjv"``): the King James Version (public domain outside the UK),
as the CrossWire / eBible.org SWORD module ``engKJV2006eb`` shipped by the
Debian package ``sword-text-kjv``. It is fetched once without root
(:mod:`detinit.data.debian`), its six module files are SHA-256 checked, and the
zText module is decoded here (zlib blocks, OSIS markup stripped, translators'
footnotes dropped) to one verse or heading per line: 4,153,412 characters
on 31,169 lines, 92 distinct characters (the Hebrew letters of Psalm 119's
headings among them).

**Your own text** (``"text_file"``): ``root=`` a UTF-8 (or, with
``tokenizer="byte"``, any) file.

>>> ds = text_dataset("abcabcabcabc", "train", context=3, val_fraction=0.25)
>>> ds.vocab, ds.inputs.tolist(), ds.targets.tolist()
(('a', 'b', 'c'), [[0, 1, 2], [0, 1, 2]], [[1, 2, 0], [1, 2, 0]])
"""

from __future__ import annotations

import html
import re
import struct
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ..contract import check_fields, checked_arguments
from .base import DataError, cache_dir, register_dataset
from .debian import fetch_package_files, sha256

TOKENIZERS = ("char", "byte")

KJV_PACKAGE = "sword-text-kjv"
KJV_MODULE_DIR = "usr/share/sword/modules/texts/ztext/engKJV2006eb"
KJV_SHA256 = {  # Debian's sword-text-kjv 14.3-1
    "ot.bzs": "0d518856e8c6ceae0ca58bef944ba9a2809b5d4489cf81900853ad4af227510b",
    "ot.bzv": "b4fae54cb0b979b7f3f78fe6eaa94bad1f1d408eccb4a40410402b794b5c2f0f",
    "ot.bzz": "69f7e4e9b42ecef2e212ea957a388fccbeed1e3e333a38cf52e1b4064c6ce373",
    "nt.bzs": "e7f9bc653743217cdcdf95890a708f997a03af056161d84bb540efef79e4e638",
    "nt.bzv": "9d1daab8fb6ef43b53642cdd3276c1fa95ecfde08901bbb349be6378d1e1b972",
    "nt.bzz": "135b6e70af49372f3a82c5d9cc3c00278f38dbb2c12af74ea8d4b54c18d0cd56",
}
KJV_TEXT = "kjv.txt"
KJV_TEXT_SHA256 = "cd05b73b206678c2d138006001a4cffc54f1258b07094a6692ce3ee43213049b"  # what decode_ztext makes of them
KJV_HOW_TO_GET = (
    "detinit fetches it with `apt-get download sword-text-kjv` + `dpkg-deb -x` (no root needed); "
    "or use data='text_file' with root=PATH to any plain-text file"
)


@dataclass(frozen=True)
class TokenDataset:
    """Windows of a tokenised text for next-token prediction.

    ``inputs`` and ``targets`` are ``(N, context)`` int32; ``vocab`` holds the
    characters (``tokenizer="char"``) or is ``None`` for bytes (256 ids).
    """

    name: str
    split: str
    inputs: torch.Tensor
    targets: torch.Tensor
    vocab: tuple[str, ...] | None
    unigram: torch.Tensor  # (V,) token counts of the training part, for the unigram baseline

    def __post_init__(self) -> None:
        check_fields(self)
        where = f"{self.name}/{self.split}"
        if self.inputs.shape != self.targets.shape or self.inputs.dim() != 2:
            raise DataError(
                f"{where}: inputs {tuple(self.inputs.shape)} and targets "
                f"{tuple(self.targets.shape)} must be equal (N, context) shapes"
            )
        ints = (torch.int32, torch.int64)
        if self.inputs.dtype not in ints or self.targets.dtype not in ints:
            raise DataError(f"{where}: inputs and targets must be token ids (int32 or int64), got "
                            f"{self.inputs.dtype} and {self.targets.dtype}")  # fmt: skip
        vocab = self.num_classes
        for what, ids in (("inputs", self.inputs), ("targets", self.targets)):
            if ids.numel() and not 0 <= int(ids.min()) <= int(ids.max()) < vocab:
                raise DataError(f"{where}: {what} hold token ids {int(ids.min())}..{int(ids.max())}, outside the "
                                f"vocabulary of {vocab} (0..{vocab - 1})")  # fmt: skip
        if self.unigram.shape != (vocab,) or not bool(torch.isfinite(self.unigram).all() & (self.unigram >= 0).all()):
            raise DataError(f"{where}: unigram must hold {vocab} finite token counts >= 0 (one per token of the "
                            f"vocabulary), got {self.unigram.dtype} {tuple(self.unigram.shape)}")  # fmt: skip

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def num_classes(self) -> int:
        """Vocabulary size."""
        return len(self.vocab) if self.vocab is not None else 256

    @property
    def context(self) -> int:
        return int(self.inputs.shape[1])

    @checked_arguments(at_least={"n": 1})
    def subset(self, n: int | None, seed: int = 0) -> TokenDataset:
        """``n`` windows: random ones (seeded) for training, evenly spaced ones (seed-free) for ``"test"``.

        Evenly spaced validation windows cover the whole validation text and
        are the same for every seed, so seeds differ only in training.
        """
        if n is None or n >= len(self):
            return self
        if n < 1:
            raise ValueError(f"subset size must be >= 1, got {n}")
        if self.split == "test":
            keep = torch.linspace(0, len(self) - 1, n).round().long().unique()
        else:
            keep = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n].sort().values
        return replace(self, inputs=self.inputs[keep], targets=self.targets[keep])

    def decode(self, ids: torch.Tensor | list[int]) -> str:
        """Token ids back to text (bytes are decoded as UTF-8, invalid sequences replaced)."""
        values = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        if self.vocab is None:
            return bytes(values).decode("utf-8", errors="replace")
        return "".join(self.vocab[i] for i in values)


@checked_arguments()
def unigram_loss(dataset: TokenDataset) -> float:
    r"""Cross-entropy (nats per token) of ``dataset``'s targets under the training part's unigram distribution.

    :math:`-\frac1N\sum_t \log p(y_t)`, :math:`p` the add-one-smoothed token
    frequencies of the training text: the loss of the best model that ignores
    context, which a language model must beat.
    """
    counts = dataset.unigram.double() + 1.0
    log_p = counts.log() - counts.sum().log()
    return float(-log_p[dataset.targets.long().flatten()].mean())


def tokenize(text: str | bytes, tokenizer: str) -> tuple[torch.Tensor, tuple[str, ...] | None]:
    """Token ids (int32) and the vocabulary (``None`` for bytes)."""
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"tokenizer={tokenizer!r} is not supported; choose one of {TOKENIZERS}")
    if tokenizer == "byte":
        raw = text.encode("utf-8") if isinstance(text, str) else text
        return torch.frombuffer(bytearray(raw), dtype=torch.uint8).to(torch.int32), None
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    points, ids = np.unique(codes, return_inverse=True)  # sorted code points = sorted characters
    return torch.from_numpy(ids.astype(np.int32)), tuple(chr(c) for c in points.tolist())


def _names_a_file(text: str) -> bool:
    """Whether ``text`` is the path of an existing file (a text too long for a path name is not one)."""
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


@checked_arguments()
def text_dataset(
    text: str | bytes,
    split: str,
    *,
    name: str = "text",
    context: int = 128,
    tokenizer: str = "char",
    val_fraction: float = 0.1,
) -> TokenDataset:
    """Tokenise ``text`` (the text itself: a file is read by the dataset ``text_file``), take split ``"train"``
    (first part) or ``"test"`` (last ``val_fraction``), cut windows."""
    if split not in ("train", "test"):
        raise ValueError(f"text_dataset: split={split!r} is not supported; choose 'train' or 'test'")
    if isinstance(text, str) and "\n" not in text and _names_a_file(text):
        raise ValueError(
            f"text_dataset: text={text!r} is the path of a file, not its text; text_dataset tokenises the string it "
            "is given: pass the file's text (Path(...).read_text()) or load_dataset('text_file', split, root=path)"
        )
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction!r}")
    ids, vocab = tokenize(text, tokenizer)
    cut = int(len(ids) * (1.0 - val_fraction))
    part = ids[:cut] if split == "train" else ids[cut:]
    windows = (len(part) - 1) // context
    if windows < 1:
        raise DataError(
            f"{name}: the {split} part has {len(part)} tokens, too few for one window of context={context}; "
            "use a longer text, a smaller context or a different val_fraction"
        )
    body = part[: windows * context + 1]
    unigram = torch.bincount(ids[:cut].long(), minlength=len(vocab) if vocab is not None else 256)
    return TokenDataset(
        name,
        split,
        body[:-1].view(windows, context).clone(),
        body[1:].unfold(0, context, context).clone(),
        vocab,
        unigram,
    )


# ------------------------------------------------------------------ the SWORD zText format (KJV)
_NOTE = re.compile(r"<note\b[^>]*>.*?</note>", re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def strip_osis(fragment: str) -> str:
    """Plain text of an OSIS fragment: footnotes dropped, tags removed, entities and spaces normalised.

    >>> strip_osis('In the <w lemma="strong:H7225">beginning</w><note placement="foot">Heb. x</note> God.')
    'In the beginning God.'
    """
    return _SPACE.sub(" ", html.unescape(_TAG.sub("", _NOTE.sub("", fragment)))).strip()


def decode_ztext(module_dir: Path, testaments: tuple[str, ...] = ("ot", "nt")) -> str:
    """The text of a SWORD zText Bible module, one non-empty entry (verse or heading) per line.

    Per testament, ``.bzs`` lists zlib blocks as ``(offset, size, uncompressed
    size)`` little-endian uint32 triples into ``.bzz``; ``.bzv`` lists every
    verse as ``(block uint32, offset uint32, size uint16)`` into its block's text.
    """
    lines = []
    for testament in testaments:
        bzs = (module_dir / f"{testament}.bzs").read_bytes()
        bzv = (module_dir / f"{testament}.bzv").read_bytes()
        bzz = (module_dir / f"{testament}.bzz").read_bytes()
        blocks = []
        for offset, size, unpacked in struct.iter_unpack("<III", bzs):
            block = zlib.decompress(bzz[offset : offset + size])
            if len(block) != unpacked:
                raise DataError(f"{module_dir}/{testament}.bzz: a block unpacks to {len(block)} bytes, not {unpacked}")
            blocks.append(block)
        for block, offset, size in struct.iter_unpack("<IIH", bzv):
            if size:
                line = strip_osis(blocks[block][offset : offset + size].decode("utf-8"))
                if line:
                    lines.append(line)
    return "\n".join(lines) + "\n"


def _write_kjv_text(folder: Path) -> None:
    """Decode the module files in ``folder`` to ``kjv.txt`` (atomically) and check the result's SHA-256."""
    partial = folder / (KJV_TEXT + ".partial")
    partial.write_text(decode_ztext(folder), encoding="utf-8")
    if sha256(partial) != KJV_TEXT_SHA256:
        partial.unlink()
        raise DataError("the decoded KJV text has an unexpected SHA-256: the decoder or the package changed")
    partial.replace(folder / KJV_TEXT)


@checked_arguments()
def fetch_kjv(cache: Path | None = None) -> Path:
    """The path of the decoded KJV text, fetching and decoding the Debian package on first use."""
    folder = (cache or cache_dir()) / "kjv"
    fetch_package_files(KJV_PACKAGE, KJV_MODULE_DIR, KJV_SHA256, folder, KJV_HOW_TO_GET, _write_kjv_text)
    text = folder / KJV_TEXT
    if not text.is_file() or sha256(text) != KJV_TEXT_SHA256:  # decoded text lost or damaged: decode again
        _write_kjv_text(folder)
    return text


@register_dataset("kjv", "King James Bible, character- or byte-level LM (fetched from Debian's sword-text-kjv)")
def kjv(
    split: str, root: Path | None = None, context: int = 128, tokenizer: str = "char", val_fraction: float = 0.1
) -> TokenDataset:
    path = root / KJV_TEXT if root is not None and root.is_dir() else root or fetch_kjv()
    if not path.is_file():
        raise DataError(f"no KJV text at {path}. {KJV_HOW_TO_GET}")
    text = path.read_text(encoding="utf-8")
    return text_dataset(text, split, name="kjv", context=context, tokenizer=tokenizer, val_fraction=val_fraction)


@register_dataset("text_file", "your own text file (root=PATH), character- or byte-level LM")
def text_file(
    split: str, root: Path | None = None, context: int = 128, tokenizer: str = "char", val_fraction: float = 0.1
) -> TokenDataset:
    if root is None or not root.is_file():
        raise DataError(f"text_file needs root=PATH of a text file (data_root in a config); got {root}")
    raw = root.read_bytes()
    try:
        text: str | bytes = raw if tokenizer == "byte" else raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{root} is not UTF-8 ({err}); use tokenizer='byte' for arbitrary bytes") from None
    return text_dataset(text, split, name=root.name, context=context, tokenizer=tokenizer, val_fraction=val_fraction)

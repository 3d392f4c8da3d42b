"""PNG plots of the diagnostics (matplotlib, imported only when a plot is made)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from ..atomic import atomic_write
from .diversity import FeatureRow
from .rank import RankRow
from .signal import SignalRow


def pyplot():  # noqa: ANN201 (matplotlib.pyplot)
    """matplotlib.pyplot with the Agg backend (imported on first use)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("plots need matplotlib: pip install 'detinit[plots]'") from err
    return plt


def _log_series(ax: object, values: Sequence[float], **style: object) -> None:
    """Plot positive values on a log axis; zeros are left out and said so."""
    shown = [v if v > 0 else math.nan for v in values]
    ax.plot(range(len(values)), shown, **style)  # type: ignore[attr-defined]
    ax.set_yscale("log")  # type: ignore[attr-defined]
    if all(math.isnan(v) for v in shown):
        ax.text(0.5, 0.5, "exactly 0 everywhere", transform=ax.transAxes, ha="center")  # type: ignore[attr-defined]


def save_figure(fig: object, path: str | Path) -> Path:
    """Write a figure atomically (:func:`detinit.atomic.atomic_write`; format from the suffix) and close it."""
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    try:
        return atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=120, bbox_inches="tight"))  # type: ignore[attr-defined]
    finally:
        pyplot().close(fig)


def plot_signal_propagation(rows: Sequence[SignalRow], path: str | Path, title: str = "") -> Path:
    """Three panels over depth: channel mean^2, channel variance, gradient RMS (log scale)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key, label in zip(
        axes, ("mean_sq", "var", "grad_rms"), ("average channel mean$^2$", "average channel variance", "gradient RMS")
    ):
        _log_series(ax, [getattr(r, key) for r in rows], marker="o", ms=3)
        ax.set_xlabel("block / layer index")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    fig.suptitle(title or "signal propagation", y=1.03)
    return save_figure(fig, path)


def plot_feature_diversity(rows: Sequence[FeatureRow], path: str | Path, title: str = "") -> Path:
    """Participation ratio (relative to the channel count) and max channel difference over depth."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    depth = range(len(rows))
    axes[0].plot(depth, [r.participation_ratio / r.channels for r in rows], marker="o", ms=3)
    axes[0].set_title("participation ratio / channels")
    axes[0].set_ylim(bottom=0)
    _log_series(axes[1], [r.max_channel_difference for r in rows], marker="o", ms=3)
    axes[1].set_title("max relative channel difference")
    for ax in axes:
        ax.set_xlabel("block / layer index")
        ax.grid(alpha=0.3)
    fig.suptitle(title or "feature diversity", y=1.03)
    return save_figure(fig, path)


def plot_rank(rows: Sequence[RankRow], path: str | Path, title: str = "") -> Path:
    """Stable and effective rank per layer, relative to the smaller dimension."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    depth = range(len(rows))
    dims = [min(r.shape[0], max(1, math.prod(r.shape[1:]))) for r in rows]
    ax.plot(depth, [r.effective_rank / d for r, d in zip(rows, dims)], marker="o", ms=3, label="effective rank")
    ax.plot(depth, [r.stable_rank / d for r, d in zip(rows, dims)], marker="s", ms=3, label="stable rank")
    ax.set_xlabel("layer index")
    ax.set_ylabel("rank / min(P, Q)")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title or "rank of the weights")
    return save_figure(fig, path)

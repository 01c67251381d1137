"""Labelled figures drawn with matplotlib, returned as RGB image tensors (3, H, W) in [0, 1].

`labelled_grid` frames a torchvision image grid with a title and row and column labels, each image
shown at SCALE times its size in pixels (nearest neighbour, so digits stay crisp); `scatter_by_label`
draws 2-D codes with a legend of the labels. No pyplot: no global backend or figure state, so a
figure never leaks between calls or threads.
"""

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

DPI = 100
SCALE = 2  # screen pixels per image pixel: 28-pixel digits show at 56
FONT = 9
TITLE_IN, BOTTOM_IN, RIGHT_IN, PLAIN_IN = 0.6, 0.5, 0.15, 0.15  # margins in inches
ROW_LABELS_IN = 1.25  # the left margin when rows are labelled ("z12  var 1.23")


def figure_image(fig: Figure) -> Tensor:
    """The RGB pixels of a drawn figure. -> (3, H, W) in [0, 1]"""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())  # (H, W, 4) uint8
    return torch.from_numpy(rgba[..., :3].copy()).permute(2, 0, 1).float() / 255


def grid_centres(count: int, tile: int, pad: int) -> list[float]:
    """Pixel centres of the `count` tiles along one side of a torchvision grid, in imshow's coordinates."""
    return [pad + i * (tile + pad) + (tile - 1) / 2 for i in range(count)]


def labelled_grid(
    grid: Tensor,
    rows: int,
    cols: int,
    title: str,
    row_labels: list[str] | None = None,
    col_labels: list[str] | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    pad: int = 2,
) -> Tensor:
    """A torchvision grid (C, H, W) of rows x cols tiles with `pad` pixels around each, titled and labelled.

    The figure is exactly SCALE times the grid plus fixed margins (`figure_size`). -> (3, H', W')
    """
    height, width = grid.shape[-2:]
    tile_h, tile_w = (height - pad) // rows - pad, (width - pad) // cols - pad
    labelled_rows, labelled_cols = bool(row_labels or ylabel), bool(col_labels or xlabel)
    fig_w, fig_h = figure_size(grid, labelled_rows, labelled_cols)
    left = ROW_LABELS_IN if labelled_rows else PLAIN_IN
    bottom = BOTTOM_IN if labelled_cols else PLAIN_IN
    fig = Figure(figsize=(fig_w, fig_h), dpi=DPI)
    ax = fig.add_axes((left / fig_w, bottom / fig_h, SCALE * width / DPI / fig_w, SCALE * height / DPI / fig_h))
    pixels = grid.detach().float().cpu().clamp(0, 1).expand(3, -1, -1).permute(1, 2, 0).numpy()  # (H, W, 3)
    ax.imshow(pixels, interpolation="nearest")
    ax.set_yticks(grid_centres(rows, tile_h, pad) if row_labels else [], row_labels or [], fontsize=FONT)
    ax.set_xticks(grid_centres(cols, tile_w, pad) if col_labels else [], col_labels or [], fontsize=FONT)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_xlabel(xlabel or "", fontsize=FONT)
    ax.set_ylabel(ylabel or "", fontsize=FONT)
    fig.suptitle(title, fontsize=FONT + 1, x=0.02, y=1 - 0.08 / fig_h, ha="left", va="top")
    return figure_image(fig)


def figure_size(grid: Tensor, labelled_rows: bool, labelled_cols: bool) -> tuple[float, float]:
    """(width, height) in inches of `labelled_grid`'s figure for a grid (C, H, W)."""
    height, width = grid.shape[-2:]
    left = ROW_LABELS_IN if labelled_rows else PLAIN_IN
    bottom = BOTTOM_IN if labelled_cols else PLAIN_IN
    return left + SCALE * width / DPI + RIGHT_IN, TITLE_IN + SCALE * height / DPI + bottom


def scatter_by_label(points: Tensor, labels: Tensor, title: str, xlabel: str = "$z_1$", ylabel: str = "$z_2$") -> Tensor:
    """2-D points coloured by their integer label, one legend entry per label. points: (N, 2), labels: (N,)"""
    import matplotlib

    points, labels = points.detach().float().cpu(), labels.detach().cpu().long()
    classes = sorted(labels.unique().tolist())
    palette = matplotlib.colormaps["tab10" if len(classes) <= 10 else "tab20"]
    fig = Figure(figsize=(6, 4.8), dpi=DPI)
    ax = fig.subplots()
    by_value = classes[0] >= 0 and classes[-1] < palette.N  # digit d keeps colour d whichever digits are shown
    for i, label in enumerate(classes):
        chosen, colour = labels == label, palette(label if by_value else i % palette.N)
        ax.scatter(points[chosen, 0], points[chosen, 1], color=colour, s=6, alpha=0.8, label=str(label))
    ax.legend(title="label", loc="center left", bbox_to_anchor=(1.01, 0.5), markerscale=2.5, fontsize=FONT, frameon=False)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=FONT + 1)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return figure_image(fig)

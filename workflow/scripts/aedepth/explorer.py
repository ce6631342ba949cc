"""The latent explorer: one self-contained HTML page (Bokeh, its JavaScript inlined) that shows
a fixed subsample of the test set in the latent space of any run of the study.

Every run shows the same test images (a stratified subsample, `stratified_subsample`), so the
page stays a few MB and a selection follows its points from one run to the next. Images and
reconstructions travel as small PNG data URIs: opening the page fetches nothing.

Class names, file names, dataset and study names are the user's data: any text may reach the
page. The page's HTML built here escapes them with `html_text` (aedepth.markup); its scripts put them into the
page as text (textContent, Bokeh's text properties and escaped tooltip fields), never as HTML.
"""

from __future__ import annotations

import base64
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bokeh.document import Document
from bokeh.embed import file_html
from bokeh.layouts import column, row
from bokeh.models import (
    BoxSelectTool,
    CategoricalColorMapper,
    ColorBar,
    ColumnDataSource,
    CustomJS,
    Div,
    HoverTool,
    LassoSelectTool,
    LinearColorMapper,
    Select,
    WheelZoomTool,
)
from bokeh.palettes import Category10_10, Category20_20, Turbo256
from bokeh.plotting import figure
from bokeh.resources import INLINE

from aedepth.files import atomic_output
from aedepth.markup import html_text
from aedepth.grid import MNIST_SHAPE, REPLICATE, REQUIRED_AXES, setting_label
from aedepth.plots import NAMED_CLASSES, legend_name, project_2d

SUBSAMPLE_SEED = 0  # the draw is part of the page's definition: every build shows the same images
# Tooltip size of a thumbnail's longer side: a small image's pixels are drawn as whole
# squares, unsmoothed (a 28x28 image's 2x2); a larger image at its own size.
THUMBNAIL_PIXELS = 56
GREY_LEVELS = 16  # 4 bits a pixel (a colour image: 16 levels a channel)
NO_DECODER = "a baseline has no decoder: no reconstruction"
COUNTED_CLASSES = 20  # rows of the selection's class counts; the rest summed in one line


def _thumbnail(column: str, caption: str, shape: tuple[int, int, int]) -> str:
    """Tooltip HTML of the image in `column` (a data URI) above its caption."""
    scale = max(1, round(THUMBNAIL_PIXELS / max(shape[:2])))
    return (
        f'<figure style="margin:0;max-width:{max(120, scale * shape[1])}px"><img src="@{{{column}}}" '
        f'width="{scale * shape[1]}" height="{scale * shape[0]}" '
        f'style="image-rendering:pixelated;border:1px solid #bbb"><figcaption>{caption}'
        "</figcaption></figure>"
    )


def tooltip(shape: tuple[int, int, int] = MNIST_SHAPE) -> str:
    """The hover tooltip: the image and its reconstruction (a baseline's is an empty square)."""
    return (
        '<div><b>@label</b> (test image @index)</div><div style="display:flex;gap:6px">'
        f"{_thumbnail('image', 'image', shape)}"
        f"{_thumbnail('reconstruction', '@caption', shape)}</div>"
    )


@dataclass(frozen=True)
class View:
    """One run as the explorer shows it: its subsampled test points in 2-D and their
    reconstructions (intensities in [0, 1], one flattened image per point; None for a baseline)."""

    method: str
    values: dict[str, str]  # axis name -> value as text; only the axes the run has
    title: str
    points: np.ndarray  # (n, 2)
    axis_names: tuple[str, str]
    reconstructions: np.ndarray | None


def stratified_subsample(labels: np.ndarray, size: int, seed: int = SUBSAMPLE_SEED) -> np.ndarray:
    """Indices of `size` test points (all, if there are fewer): each class in proportion to its
    share of `labels` (largest remainders round), drawn at random within the class; grouped
    by class in class order (so the legend lists the classes in order), ascending within one.

    It depends on the labels alone, so every run of a study gets the same points."""
    classes, counts = np.unique(labels, return_counts=True)
    taken = counts.copy()
    if size < len(labels):
        quotas = counts * size / len(labels)
        taken = np.floor(quotas).astype(int)
        for position in np.argsort(taken - quotas, kind="stable")[: size - taken.sum()]:
            taken[position] += 1  # the largest remainders
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [
            np.sort(rng.choice(np.flatnonzero(labels == label), size=count, replace=False))
            for label, count in zip(classes, taken)
        ]
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def thumbnail_uri(intensities: np.ndarray, shape: tuple[int, int, int] = MNIST_SHAPE) -> str:
    """An image (intensities in [0, 1], any layout of the values of (height, width, channels)
    `shape`) as a PNG data URI in GREY_LEVELS levels: grey drawn dark on light like the PNG
    figures (gray_r), 3 channels in their colours.

    Written by hand: a grey image as a 4-bit greyscale PNG, which needs no palette, so a 28x28
    reconstruction takes ~260 bytes instead of the ~310 of Pillow's 4-bit palette PNG (~530
    at 8 bits), which keeps the default study's page at about 5.6 MB. A colour image as an
    8-bit RGB PNG (PNG has no 4-bit RGB) of 16 levels a channel, which compresses as well."""
    height, width, channels = shape
    levels = np.round(np.clip(intensities, 0, 1) * (GREY_LEVELS - 1)).astype(np.uint8)
    if channels == 1:
        grey = (GREY_LEVELS - 1 - levels).reshape(height, width)  # 0 is black in a greyscale PNG
        if width % 2:  # two pixels a byte: pad the odd column (outside the declared width)
            grey = np.pad(grey, ((0, 0), (0, 1)))
        rows = (grey[:, 0::2] << 4) | grey[:, 1::2]
        header = struct.pack(">IIBBBBB", width, height, 4, 0, 0, 0, 0)  # 4 bits, greyscale
    else:
        rows = (levels * 17).reshape(height, width * 3)  # 16 levels spread over 0..255
        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB
    scanlines = b"".join(b"\0" + row.tobytes() for row in rows)  # filter type 0: none
    png = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(scanlines, 9))
        + _png_chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def run_view(
    record: dict,
    labels: dict[str, str],
    omit: dict,
    z_test: np.ndarray,
    subsample: np.ndarray,
    reconstructions: np.ndarray | None,
) -> View:
    """A run's view: its whole test set projected as the PNG figures project it (project_2d:
    the first two principal components above 2-D), then the subsample's rows taken.

    `record` is the run's (aedepth.grid.Run.record), `labels` and `omit` the grid's."""
    points, axis_names = project_2d(z_test)
    title = ", ".join(
        part
        for part in (
            record["method"],
            setting_label(record, list(labels), labels, omit),
            f"seed {record[REPLICATE]}" if record.get(REPLICATE) is not None else "",
        )
        if part
    )
    return View(
        method=record["method"],
        values={axis: str(record[axis]) for axis in labels if record.get(axis) is not None},
        title=title,
        points=np.asarray(points[subsample], dtype=np.float32),
        axis_names=axis_names,
        reconstructions=reconstructions,
    )


def _view_source(view: View, shape: tuple[int, int, int]) -> ColumnDataSource:
    """The columns a view swaps in: its points, reconstructions and their caption."""
    if view.reconstructions is None:
        blank = thumbnail_uri(np.zeros(math.prod(shape)), shape)
        thumbnails, caption = [blank] * len(view.points), NO_DECODER
    else:
        thumbnails = [thumbnail_uri(r, shape) for r in view.reconstructions]
        caption = "reconstruction"
    return ColumnDataSource(
        {
            "x": view.points[:, 0],
            "y": view.points[:, 1],
            "reconstruction": thumbnails,
            "caption": [caption] * len(view.points),
        }
    )


def _axis_options(views: list[View], axis_labels: dict[str, str]) -> dict[str, list[str]]:
    """The values offered per axis: every axis the study varies, and always depth, latent size
    and seed; in the order of the grid's axes, values in numeric order where they are numbers."""

    def order(value: str):
        try:
            return (0, float(value), value)
        except ValueError:
            return (1, 0.0, value)

    options = {}
    for axis in axis_labels:
        values = sorted({view.values[axis] for view in views if axis in view.values}, key=order)
        if len(values) > 1 or (values and axis in REQUIRED_AXES):
            options[axis] = values
    return options


# Swap the shown run: the view whose method is chosen and whose axis values match every
# select (a baseline has no depth, say: the axes it lacks are disabled and ignored).
_SWITCH = """
const method = method_select.value;
const wanted = {};
for (const [axis, select] of Object.entries(selects)) wanted[axis] = select.value;
const matches = (view) => view.method === method && Object.entries(view.values).every(
    ([axis, value]) => !(axis in wanted) || wanted[axis] === value);
const position = catalogue.findIndex(matches);
for (const [axis, select] of Object.entries(selects))
    select.disabled = !catalogue.some((view) => view.method === method && axis in view.values);
if (position < 0) { status.text = "No run of the study has these values."; return; }
const view = catalogue[position];
const data = views[position].data;
source.data = {...source.data, x: data.x, y: data.y, reconstruction: data.reconstruction,
    caption: data.caption};
plot.title.text = view.title;
xaxis.axis_label = view.x_name;
yaxis.axis_label = view.y_name;
status.text = "Showing: " + view.title;
"""

# The class counts of the selected points (box or lasso), in class order: at most `rows`
# classes (the largest counts), the rest summed in one line. Built as elements whose text is
# set (textContent), so a class name is never read as HTML.
_COUNT = """
const counts = new Map(classes.map((name) => [name, 0]));
for (const i of source.selected.indices) {
    const name = source.data.label[i];
    counts.set(name, counts.get(name) + 1);
}
const total = source.selected.indices.length;
if (total === 0) { counts_div.text = empty; return; }
let shown = [...counts].filter(([name, count]) => count > 0);
let rest = 0, others = 0;
if (shown.length > rows) {
    const kept = new Set([...shown].sort((a, b) => b[1] - a[1]).slice(0, rows).map(([n]) => n));
    for (const [name, count] of shown) if (!kept.has(name)) { rest += count; others += 1; }
    shown = shown.filter(([name]) => kept.has(name));
}
const element = (tag, text) => {
    const made = document.createElement(tag);
    if (text !== undefined) made.textContent = String(text);
    return made;
};
const line = (cells, tag) => {
    const tr = element("tr");
    for (const text of cells) tr.appendChild(element(tag, text));
    tr.lastChild.style.textAlign = "right";
    return tr;
};
const box = element("div");
box.appendChild(element("b", `Selection: ${total} points`));
const table = element("table");
table.className = "aedepth-counts";
table.appendChild(line(["class", "points"], "th"));
for (const [name, count] of shown) table.appendChild(line([name, count], "td"));
if (others > 0) table.appendChild(line([`${others} more classes`, rest], "td"));
box.appendChild(table);
counts_div.text = box.innerHTML;
"""


def page_note(
    shown: int,
    total: int,
    seed: int = SUBSAMPLE_SEED,
    shape: tuple[int, int, int] = MNIST_SHAPE,
    classes: int = 10,
) -> str:
    """What the page shows and how its points were drawn (HTML, at the top of the page)."""
    sample = (
        f"all {total} test images"
        if shown == total
        else f"{shown} of the {total} test images, drawn once for the whole page: stratified by "
        f"class (each class in proportion to its share of the test set, at random within the "
        f"class, seed {seed})"
    )
    return (
        f"<p>Each point is one test image in the latent space of the chosen run: {sample}. "
        "Every run shows the same images, so a selection follows its points when you switch "
        "runs. Hover a point to see the image and the run's reconstruction of it "
        f"({shape[1]}x{shape[0]} PNG thumbnails in {GREY_LEVELS} "
        f"{'grey levels' if shape[2] == 1 else 'levels a colour channel'}, embedded in the "
        "page); select points with "
        "the box or lasso tool to count them by class. Codes wider than 2 are drawn by their "
        "first two principal components, as in the PNG figures. A baseline (e.g. PCA) has no "
        "decoder, so no reconstruction."
        + (
            f" The {classes} classes are too many to name in a legend: a point's colour is its "
            "class's position in the class list (the colour bar), hover it for its class.</p>"
            if classes > NAMED_CLASSES
            else "</p>"
        )
    )


def explorer_page(
    views: list[View],
    subsample: np.ndarray,
    images: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    axis_labels: dict[str, str],
    title: str,
    shape: tuple[int, int, int] = MNIST_SHAPE,
    about: dict[str, str] | None = None,
) -> str:
    """The HTML page. `subsample` holds the test indices shown, `images` their originals
    (intensities in [0, 1], one row per point, of (height, width, channels) `shape`) and
    `labels` their classes, shared by every view; `labels` has the length of the whole test
    set (for the page's note). `about` names what the page is of, shown under the title (e.g.
    {"study": ..., "dataset": ..., "source": ...}). Every text is escaped (`html_text`)."""
    first = views[0]
    source = _shown_points(first, subsample, images, labels[subsample], class_names, shape)
    shown = set(labels[subsample].tolist())
    classes = [name for k, name in enumerate(class_names) if k in shown]
    plot = _scatter_plot(source, first, classes, len(class_names), shape)
    method_select = Select(
        title="method",
        value=first.method,
        options=list(dict.fromkeys(view.method for view in views)),
    )
    selects = {
        axis: Select(
            title=axis_labels[axis], value=first.values.get(axis, values[0]), options=values
        )
        for axis, values in _axis_options(views, axis_labels).items()
    }
    status = Div(text=f"Showing: {first.title}", render_as_text=True)
    empty = "<i>Select points (box or lasso tool) to count them by class.</i>"
    counts_div = Div(name="class-counts", text=empty, width=220)
    switch = CustomJS(
        args={
            "method_select": method_select,
            "selects": selects,
            "catalogue": [_catalogue_entry(view) for view in views],
            "views": [_view_source(view, shape) for view in views],
            "source": source,
            "plot": plot,
            "xaxis": plot.xaxis[0],
            "yaxis": plot.yaxis[0],
            "status": status,
        },
        code=_SWITCH,
    )
    for select in [method_select, *selects.values()]:
        select.js_on_change("value", switch)
    source.selected.js_on_change(
        "indices",
        CustomJS(
            args={
                "source": source,
                "classes": classes,
                "counts_div": counts_div,
                "empty": empty,
                "rows": COUNTED_CLASSES,
            },
            code=_COUNT,
        ),
    )
    note = page_note(len(subsample), len(labels), shape=shape, classes=len(class_names))
    layout = column(
        Div(text=f"{_heading(title, about or {})}{note}", width=960),
        row(method_select, *selects.values()),
        status,
        row(plot, counts_div),
    )
    document = Document()
    document.add_root(layout)
    document.js_on_event("document_ready", switch)
    return file_html(document, resources=INLINE, title=title)  # Bokeh escapes the <title>


def _heading(title: str, about: dict[str, str]) -> str:
    """The page's heading and what it is of, escaped."""
    parts = [f"<b>{html_text(key)}</b> {html_text(value)}" for key, value in about.items()]
    return f"<h2>{html_text(title)}</h2>" + (f"<p>{' · '.join(parts)}</p>" if parts else "")


def _shown_points(first: View, subsample, images, labels, class_names, shape) -> ColumnDataSource:
    """The points on show: the first view's coordinates, each point's class (its name, the name
    as the legend shows it, its position in `class_names`), test index and original's
    thumbnail; its reconstruction and caption are filled in by the page's `switch` once loaded
    (one copy of each view's thumbnails)."""
    names = [class_names[int(label)] for label in labels]
    return ColumnDataSource(
        name="shown",
        data={
            "x": first.points[:, 0],
            "y": first.points[:, 1],
            "label": names,
            "legend": [legend_name(name) for name in names],
            "class": np.asarray(labels, dtype=np.int32),
            "index": subsample,
            "image": [thumbnail_uri(image, shape) for image in images],
            "reconstruction": [""] * len(subsample),
            "caption": [""] * len(subsample),
        },
    )


def _scatter_plot(source: ColumnDataSource, first: View, classes: list[str], total: int, shape):
    """The latent scatter plot of `source`, coloured by class, with hover thumbnails and box
    and lasso selection. Up to NAMED_CLASSES classes (of `total`) a colour each and a legend
    (`classes`: those shown, in order); past it a continuous colour map over the class's
    position and a colour bar."""
    plot = figure(
        name="latent-space",
        width=720,
        height=620,
        title=first.title,
        tools="pan,wheel_zoom,reset,save",
        x_axis_label=first.axis_names[0],
        y_axis_label=first.axis_names[1],
    )
    if total <= NAMED_CLASSES:
        colours = CategoricalColorMapper(factors=classes, palette=class_palette(len(classes)))
        scatter = plot.scatter(
            "x", "y", source=source, size=6, alpha=0.75,
            color={"field": "label", "transform": colours}, legend_field="legend",
        )  # fmt: skip
        plot.legend.title = "class"
        plot.add_layout(plot.legend[0], "right")
    else:
        colours = LinearColorMapper(palette=Turbo256, low=0, high=total - 1)
        scatter = plot.scatter(
            "x", "y", source=source, size=6, alpha=0.75,
            color={"field": "class", "transform": colours},
        )  # fmt: skip
        bar = ColorBar(color_mapper=colours, title=f"class (position of {total})", width=12)
        plot.add_layout(bar, "right")
    plot.add_tools(
        HoverTool(renderers=[scatter], tooltips=tooltip(shape)),
        box_select := BoxSelectTool(renderers=[scatter]),
        LassoSelectTool(renderers=[scatter]),
    )
    plot.toolbar.active_drag = box_select  # selecting is what the page is for; pan is a click away
    plot.toolbar.active_scroll = plot.select_one(WheelZoomTool)
    return plot


def _catalogue_entry(view: View) -> dict:
    """What the page's `switch` knows of a view besides its points: its menu values, title and
    axis names."""
    return {
        "method": view.method,
        "values": view.values,
        "title": view.title,
        "x_name": view.axis_names[0],
        "y_name": view.axis_names[1],
    }


def class_palette(classes: int) -> list[str]:
    """A colour per class, up to NAMED_CLASSES (20): Category10's, Category20's past 10 (as
    the PNG figures' tab10 and tab20). Past 20 classes the page colours by a continuous colour
    map (Turbo256) instead, with a colour bar: no palette of distinct colours stays readable."""
    if classes > NAMED_CLASSES:
        raise ValueError(f"{classes} classes: at most {NAMED_CLASSES} get a colour each")
    return list(Category10_10[:classes]) if classes <= 10 else list(Category20_20[:classes])


def write_page(path: str | Path, html: str) -> None:
    """Write atomically: a killed job never leaves a complete-looking page."""
    with atomic_output(path) as tmp:
        Path(tmp).write_text(html, encoding="utf-8")

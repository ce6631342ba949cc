"""The latent explorer: its parts (the subsample, the thumbnails, the page), and the page itself
in headless Chromium (Debian's `chromium`, driven by Playwright): hover, switch, select, and
never a request off the machine."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from aedepth.data import load_sample
from aedepth.explorer import (
    GREY_LEVELS,
    explorer_page,
    run_view,
    stratified_subsample,
    thumbnail_uri,
)
from aedepth.model import build_model, encode_images, reconstruct_images
from aedepth.plots import project_2d

LABELS = {"depth": "depth", "latent_dim": "latent size", "seed": "seed"}
CLASSES = [f"digit {k}" for k in range(10)]
POINTS = 300
CHROMIUM = shutil.which("chromium")


# --- the subsample ------------------------------------------------------------------------------


def test_the_subsample_keeps_each_class_share_and_is_the_same_every_time():
    labels = np.repeat(np.arange(4), [500, 300, 150, 50])  # unbalanced classes
    rng = np.random.default_rng(7)
    labels = rng.permutation(labels)
    chosen = stratified_subsample(labels, 100)
    assert len(chosen) == len(set(chosen)) == 100
    assert np.bincount(labels[chosen]).tolist() == [50, 30, 15, 5]
    assert np.array_equal(chosen, stratified_subsample(labels, 100))  # every run, every build
    assert not np.array_equal(chosen, stratified_subsample(labels, 100, seed=1))
    # grouped by class in class order (the legend's order), ascending within a class
    assert np.all(np.diff(labels[chosen]) >= 0)
    for label in range(4):
        assert np.all(np.diff(chosen[labels[chosen] == label]) > 0)


def test_the_subsample_rounds_to_the_exact_size_and_takes_all_when_asked_for_more():
    labels = np.repeat(np.arange(3), [10, 10, 10])
    assert len(stratified_subsample(labels, 10)) == 10  # quotas 3.33 each: one gets 4
    assert sorted(stratified_subsample(labels, 50)) == list(range(30))


# --- the thumbnails -----------------------------------------------------------------------------


def test_a_thumbnail_decodes_back_to_its_image_in_grey_levels():
    image = load_sample()["x_test"][0] / 255.0
    uri = thumbnail_uri(image)
    assert uri.startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert decoded.size == (28, 28)
    grey = np.asarray(decoded.convert("L"), dtype=float)
    # dark on light, as the figures draw digits: intensity 1 is black, 0 white
    expected = 255 * (1 - np.round(image * (GREY_LEVELS - 1)) / (GREY_LEVELS - 1))
    assert np.abs(grey - expected).max() <= 1
    assert np.abs(grey - 255 * (1 - image)).max() <= 255 / (GREY_LEVELS - 1) / 2 + 1
    assert len(uri) < 500  # what keeps the page a few MB


# --- the page -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def study_views():
    """A small study's views from real digits: untrained models of depths 1 and 2, seeds 0 and
    1 (each a different initialisation), and a PCA baseline; with their subsample."""
    arrays = load_sample()
    x_test, y_test = arrays["x_test"], arrays["y_test"]
    subsample = stratified_subsample(y_test, POINTS)
    views = []
    for depth in (1, 2):
        for seed in (0, 1):
            torch.manual_seed(seed)
            model = build_model({"widths": [64, 32][:depth], "latent_dim": 2}).eval()
            record = {"method": "autoencoder", "depth": depth, "latent_dim": 2, "seed": seed}
            reconstructions = reconstruct_images(model, x_test[subsample])
            z = encode_images(model, x_test)
            views.append(run_view(record, LABELS, {}, z, subsample, reconstructions))
    pixels = x_test.reshape(len(x_test), -1) / 255.0
    centred = pixels - pixels.mean(axis=0)
    pca = centred @ np.linalg.svd(centred, full_matrices=False)[2][:2].T
    views.append(run_view({"method": "pca", "latent_dim": 2}, LABELS, {}, pca, subsample, None))
    return views, subsample, x_test[subsample] / 255.0, y_test


@pytest.fixture(scope="module")
def page_file(study_views, tmp_path_factory) -> Path:
    views, subsample, images, labels = study_views
    html = explorer_page(views, subsample, images, labels, CLASSES, LABELS, "Latent explorer")
    path = tmp_path_factory.mktemp("explorer") / "explorer.html"
    path.write_text(html, encoding="utf-8")
    return path


def test_a_wider_code_is_drawn_as_the_figures_draw_it():
    z = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    subsample = np.array([3, 1, 4])
    record = {"method": "autoencoder", "depth": 2, "latent_dim": 4, "seed": 0}
    view = run_view(record, LABELS, {}, z, subsample, None)
    points, names = project_2d(z)  # projected over the whole test set, then subsampled
    assert np.allclose(view.points, points[subsample])
    assert view.axis_names == names == ("PC1 of the latent code", "PC2 of the latent code")
    assert view.title == "autoencoder, depth 2, latent size 4, seed 0"
    assert view.values == {"depth": "2", "latent_dim": "4", "seed": "0"}


def test_the_page_loads_nothing_from_the_network_and_says_how_it_subsamples(page_file):
    html = page_file.read_text()
    tags = re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", html, flags=re.IGNORECASE)
    assert tags  # BokehJS is inlined in <script> elements
    for tag in tags:
        assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", tag), tag
    assert f"{POINTS} of the 1000 test images" in html
    assert "stratified by class" in html and "seed 0" in html
    assert len(html) < 3_000_000  # 5 views of 300 points


# --- the page in headless Chromium --------------------------------------------------------------

# Page coordinates of a plotted point, and of the plot's frame (BokehJS's own scales).
_POINT = """(i) => {
  const doc = Bokeh.documents[0];
  const view = Bokeh.index.find_one(doc.get_model_by_name("latent-space"));
  const source = doc.get_model_by_name("shown");
  const canvas = view.canvas_view.el.getBoundingClientRect();
  const frame = view.frame.bbox;
  return {
    x: canvas.left + view.frame.x_scale.compute(source.data.x[i]),
    y: canvas.top + view.frame.y_scale.compute(source.data.y[i]),
    left: canvas.left + frame.left, top: canvas.top + frame.top,
    right: canvas.left + frame.right, bottom: canvas.top + frame.bottom,
  };
}"""
# Page coordinates of every plotted point.
_SCREEN = """() => {
  const doc = Bokeh.documents[0];
  const view = Bokeh.index.find_one(doc.get_model_by_name("latent-space"));
  const source = doc.get_model_by_name("shown");
  const canvas = view.canvas_view.el.getBoundingClientRect();
  return Array.from(source.data.x, (x, i) => [
    canvas.left + view.frame.x_scale.compute(x),
    canvas.top + view.frame.y_scale.compute(source.data.y[i]),
  ]);
}"""
_LOADED = """() => window.Bokeh && Bokeh.documents.length > 0 &&
  Bokeh.documents[0].get_model_by_name("shown").data.caption[0] !== \"\""""
_SHOWN = """() => {
  const source = Bokeh.documents[0].get_model_by_name("shown");
  return {x: Array.from(source.data.x), reconstruction: source.data.reconstruction.slice(),
          selected: source.selected.indices.slice(),
          title: Bokeh.documents[0].get_model_by_name("latent-space").title.text,
          counts: Bokeh.documents[0].get_model_by_name("class-counts").text};
}"""


def _offsite(requests: list[str]) -> list[str]:
    return [url for url in requests if not url.startswith(("file:", "data:"))]


def _loneliest(points: np.ndarray) -> int:
    """The point farthest from its nearest neighbour (axes scaled to their range)."""
    scaled = (points - points.min(axis=0)) / np.ptp(points, axis=0)
    distances = np.linalg.norm(scaled[:, None] - scaled[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    return int(distances.min(axis=1).argmax())


def _inside(screen: list, box: tuple, margin: float) -> set[int]:
    """Points within `box` (left, top, right, bottom) grown by `margin` pixels."""
    left, top, right, bottom = box
    return {
        i
        for i, (x, y) in enumerate(screen)
        if left - margin <= x <= right + margin and top - margin <= y <= bottom + margin
    }


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_the_page_in_a_browser_hovers_switches_and_counts_offline(page_file, study_views, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    views, subsample, _, labels = study_views
    requests = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.on("request", lambda request: requests.append(request.url))
        # any request off the machine fails at once (it is recorded above all the same)
        page.route(re.compile(r"^(?!file:|data:)"), lambda route: route.abort())
        page.goto(page_file.as_uri())
        assert _offsite(requests) == []  # everything the page loads on opening
        page.wait_for_function(_LOADED, timeout=30_000)
        first = page.evaluate(_SHOWN)
        assert first["title"] == "autoencoder, depth 1, latent size 2, seed 0"
        assert np.allclose(first["x"], views[0].points[:, 0])

        # hover a point with no other under the cursor: its image and its reconstruction
        i = _loneliest(views[0].points)
        point = page.evaluate(_POINT, int(i))
        page.mouse.move(point["x"], point["y"])
        tooltip = page.get_by_text(f"test image {subsample[i]})").locator("xpath=../..")
        tooltip.wait_for(state="visible", timeout=10_000)
        images = tooltip.locator("img").evaluate_all(
            "(images) => images.map((image) => [image.src, image.naturalWidth])"
        )
        assert images == [
            [thumbnail_uri(image), 28]  # naturalWidth 28: decoded, not a broken image
            for image in (study_views[2][i], views[0].reconstructions[i])
        ]
        page.screenshot(path=tmp_path / "explorer-hover.png")

        # switch depth: another model's points and reconstructions
        page.locator(".bk-input-group", has_text="depth").locator("select").select_option("2")
        page.wait_for_function(
            "() => Bokeh.documents[0].get_model_by_name('latent-space').title.text"
            ".includes('depth 2')"
        )
        second = page.evaluate(_SHOWN)
        assert second["title"] == "autoencoder, depth 2, latent size 2, seed 0"
        assert np.allclose(second["x"], views[2].points[:, 0])
        assert not np.allclose(second["x"], first["x"])
        assert second["reconstruction"] != first["reconstruction"]

        # box selection (the active drag tool) over the left half: counts by class
        frame = page.evaluate(_POINT, 0)
        middle = (frame["left"] + frame["right"]) / 2
        page.mouse.move(frame["left"] + 2, frame["top"] + 2)
        page.mouse.down()
        page.mouse.move(frame["left"] + 40, frame["top"] + 40, steps=5)
        page.mouse.move(middle, frame["bottom"] - 2, steps=5)
        page.mouse.up()
        page.wait_for_function(
            "() => Bokeh.documents[0].get_model_by_name('shown').selected.indices.length > 0"
        )
        selected = page.evaluate(_SHOWN)
        chosen = set(selected["selected"])
        screen = page.evaluate(_SCREEN)
        box = (frame["left"] + 2, frame["top"] + 2, middle, frame["bottom"] - 2)
        assert _inside(screen, box, margin=-1) <= chosen <= _inside(screen, box, margin=1)
        assert 0 < len(chosen) < POINTS
        chosen = np.array(sorted(chosen))
        assert f"Selection: {len(chosen)} points" in selected["counts"]
        rows = dict(re.findall(r"<td>([^<]+)</td><td[^>]*>(\d+)</td>", selected["counts"]))
        expected = np.bincount(labels[subsample][chosen], minlength=10)
        assert rows == {CLASSES[k]: str(n) for k, n in enumerate(expected) if n > 0}

        # the baseline: chosen the same way, depth disabled, no reconstruction
        page.locator(".bk-input-group", has_text="method").locator("select").select_option("pca")
        page.wait_for_function(
            "() => Bokeh.documents[0].get_model_by_name('latent-space').title.text"
            ".startsWith('pca')"
        )
        assert page.locator(".bk-input-group", has_text="depth").locator("select").is_disabled()
        assert np.allclose(page.evaluate(_SHOWN)["x"], views[4].points[:, 0])

        page.screenshot(path=tmp_path / "explorer.png")
        browser.close()
    if os.environ.get("AEDEPTH_SCREENSHOT_DIR"):
        target = Path(os.environ["AEDEPTH_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        for shot in ("explorer-hover.png", "explorer.png"):
            shutil.copy(tmp_path / shot, target / shot)
    assert requests[0] == page_file.as_uri()
    assert _offsite(requests) == []  # nor anything hovering, switching or selecting asked for


# --- the user's data cannot run in the page -----------------------------------------------------

# Hostile names, as class folders, files, datasets and studies may be called: an element with an
# event handler, a javascript: URL, a closing script tag, an attribute break-out, a template.
PAYLOADS = [
    "<img src=x onerror=alert(1)>",
    "javascript:alert(2)",
    "</script><script>alert(3)</script>",
    '"><svg onload=alert(4)>',
    "${alert(5)}<b>bold</b>",
]
HOSTILE_ABOUT = {
    "study": "</script><script>alert(6)</script>",
    "dataset": "<img src=x onerror=alert(7)>",
    "source": "javascript:alert(8)//<iframe src=javascript:alert(9)>.npz",
}


def _hostile_page(classes: list[str], points: int = 200, about=HOSTILE_ABOUT) -> tuple[str, list]:
    """A page of two autoencoder depths and a PCA baseline of random codes, its classes named
    `classes`; with its views."""
    rng = np.random.default_rng(3)
    labels = np.arange(points * 2) % len(classes)
    subsample = stratified_subsample(labels, points)
    views = []
    for record in (
        {"method": "autoencoder", "depth": 1, "latent_dim": 2, "seed": 0},
        {"method": "autoencoder", "depth": 2, "latent_dim": 2, "seed": 0},
        {"method": "pca", "latent_dim": 2},
    ):
        z = rng.normal(size=(len(labels), 2)).astype(np.float32)
        decoded = rng.uniform(size=(points, 784)) if record["method"] != "pca" else None
        views.append(run_view(record, LABELS, {}, z, subsample, decoded))
    images = rng.uniform(size=(points, 784))
    html = explorer_page(
        views, subsample, images, labels, classes, LABELS, f"Latent explorer: {about['dataset']}",
        about=about,
    )  # fmt: skip
    return html, views


RAW = ("<script>alert(", "<img src=x", "<svg onload", "<iframe", "<b>bold")


def _html_texts(page: str) -> list[str]:
    """The texts of the page's Bokeh document that the browser reads as HTML: each Div's (but
    one shown as text) and each hover tooltip's template."""
    found = re.search(
        r'<script type="application/json" id="[^"]*">\s*(.*?)\s*</script>', page, re.S
    )
    texts = []

    def walk(node):
        if isinstance(node, dict):
            attributes = node.get("attributes", {})
            if node.get("name") == "Div" and not attributes.get("render_as_text"):
                texts.append(attributes.get("text", ""))
            if node.get("name") == "HoverTool":
                texts.append(str(attributes.get("tooltips", "")))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(html.unescape(found.group(1))))
    return texts


def test_hostile_names_reach_the_page_only_escaped():
    page, _ = _hostile_page(PAYLOADS)
    for raw in RAW:
        assert raw not in page, raw  # anywhere in the file: Bokeh escapes its document's JSON
    texts = _html_texts(page)
    assert len(texts) == 3  # the heading, the counts' placeholder, the tooltip
    for text in texts:
        for raw in RAW:
            assert raw not in text, (raw, text)
    assert "<h2>Latent explorer: &lt;img src=x onerror=alert(7)&gt;</h2>" in texts[0]
    assert "&lt;/script&gt;&lt;script&gt;alert(6)&lt;/script&gt;" in texts[0]  # the study
    assert "javascript:alert(8)//&lt;iframe src=javascript:alert(9)&gt;.npz" in texts[0]


@pytest.mark.parametrize("count", [21, 300, 1000])
def test_more_classes_than_a_legend_can_name_get_a_colour_bar(count):
    html, _ = _hostile_page([f"class {k}" for k in range(count)], points=max(200, count))
    assert '"name":"ColorBar"' in html and '"name":"Legend"' not in html
    assert f"The {count} classes are too many to name in a legend" in html


def test_up_to_twenty_classes_get_a_legend_of_names_cut_to_a_readable_length():
    html, _ = _hostile_page([f"class {k} " + "x" * 100 for k in range(20)])
    assert '"type":"object","name":"ColorBar"' not in html
    assert '"name":"Legend"' in html
    assert "class 0 " + "x" * 19 + "\\u2026" in html  # the legend's name (JSON-escaped …)
    assert "class 0 " + "x" * 100 in html  # the hover's, in full


_SHADOW_DOM = """() => {
  // every element of the page, inside Bokeh's shadow roots too
  const all = [];
  const walk = (root) => {
    for (const element of root.querySelectorAll("*")) {
      all.push(element);
      if (element.shadowRoot) walk(element.shadowRoot);
    }
  };
  walk(document);
  const handlers = all.filter((e) => [...e.attributes].some((a) => a.name.startsWith("on")));
  const links = all.filter((e) => /^\\s*javascript:/i.test(e.getAttribute("href") || e.getAttribute("src") || ""));
  const scripts = all.filter((e) => e.tagName === "SCRIPT" && e.getRootNode() !== document);
  const images = all.filter((e) => e.tagName === "IMG" && !(e.getAttribute("src") || "").startsWith("data:"));
  const frames = all.filter((e) => ["IFRAME", "SVG", "svg"].includes(e.tagName) && e.closest(".bk-Div, div"));
  const text = all.map((e) => e.shadowRoot ? "" : e.textContent).join("\\n");
  return {handlers: handlers.map((e) => e.outerHTML.slice(0, 200)),
          links: links.map((e) => e.outerHTML.slice(0, 200)),
          scripts: scripts.map((e) => e.outerHTML.slice(0, 200)),
          images: images.map((e) => e.outerHTML.slice(0, 200)),
          text};
}"""


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_hostile_names_never_run_in_the_browser(tmp_path):
    """Class, file, dataset and study names made of script payloads: hover, box selection and
    the view switch run no script of theirs (no dialog, no handler, no script element), and
    every name shows as the text it is."""
    sync_api = pytest.importorskip("playwright.sync_api")
    html, views = _hostile_page(PAYLOADS)
    path = tmp_path / "explorer.html"
    path.write_text(html, encoding="utf-8")
    dialogs, errors = [], []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.route(re.compile(r"^(?!file:|data:)"), lambda route: route.abort())
        page.goto(path.as_uri())
        page.wait_for_function(_LOADED, timeout=30_000)

        # hover: the tooltip names the class as text
        i = _loneliest(views[0].points)
        point = page.evaluate(_POINT, int(i))
        page.mouse.move(point["x"], point["y"])
        tooltip = page.get_by_text(re.compile(r"test image \d+\)")).locator("xpath=../..")
        tooltip.wait_for(state="visible", timeout=10_000)
        hovered = PAYLOADS[int(page.evaluate("(i) => Bokeh.documents[0]"
                                              ".get_model_by_name('shown').data.class[i]", i))]  # fmt: skip
        assert hovered in tooltip.inner_text()

        # box selection over the whole frame: every class counted, by its name as text
        frame = page.evaluate(_POINT, 0)
        page.mouse.move(frame["left"] + 1, frame["top"] + 1)
        page.mouse.down()
        page.mouse.move(frame["left"] + 40, frame["top"] + 40, steps=5)
        page.mouse.move(frame["right"] - 1, frame["bottom"] - 1, steps=5)
        page.mouse.up()
        page.wait_for_function(
            "() => Bokeh.documents[0].get_model_by_name('shown').selected.indices.length > 0"
        )
        page.wait_for_timeout(300)
        seen = page.evaluate(_SHADOW_DOM)

        # the view switch: depth, then the baseline
        page.locator(".bk-input-group", has_text="depth").locator("select").select_option("2")
        page.wait_for_function(
            "() => Bokeh.documents[0].get_model_by_name('latent-space').title.text"
            ".includes('depth 2')"
        )
        page.locator(".bk-input-group", has_text="method").locator("select").select_option("pca")
        page.wait_for_function(
            "() => Bokeh.documents[0].get_model_by_name('latent-space').title.text"
            ".startsWith('pca')"
        )
        page.wait_for_timeout(500)  # any handler a payload planted has had its chance
        after = page.evaluate(_SHADOW_DOM)
        browser.close()
    assert dialogs == []
    assert errors == []
    for found in (seen, after):
        assert found["handlers"] == [] and found["links"] == [] and found["scripts"] == []
        assert found["images"] == []
    for name in [*PAYLOADS, *HOSTILE_ABOUT.values()]:  # each shown as the text it is
        assert name in seen["text"], name

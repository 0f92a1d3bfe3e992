"""Rendered text kept per process: a canvas for the plots'
figures (ffexp.plots.figures) that draws each plain string once and composites it after that.

Text is drawn from a process-wide cache of rendered strings (``TEXT_CACHE``): matplotlib lays
out and renders every glyph of every string on every draw, half of a figure's drawing time,
while the strings (labels, titles, legend entries, tick labels) repeat across draws and runs.
The figures' canvas (``TextCachingCanvas``) renders a plain string at 0 or 90 degrees once into
a small transparent Agg tile, keyed by everything its pixels depend on, its origin's position
within a pixel included (on FreeType's own 1/64 px grid, so a tile's glyphs are the ones a
direct draw renders: the pixels differ by at most one level in 255), and composites the tile
with ``draw_image`` after that; mathtext, TeX, other angles and clip paths are drawn by Agg as
usual. A sweep's next run renders only its own strings (its title, tick labels at new places).
The cache keeps the 2,048 most recently drawn tiles (docs/benchmarks.md: what it saves).

Private parts: ``RendererAgg.draw_text`` overridden and ``FigureCanvasAgg.get_renderer``'s
body copied; gated on the tested matplotlib series (``canvas``), elsewhere matplotlib's own
``FigureCanvasAgg`` draws (the same pixels within a level, one warning).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from typing import NamedTuple

import numpy as np
from matplotlib import rcParams
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg
from matplotlib.font_manager import findfont, fontManager, get_font


class Tile(NamedTuple):
    """A rendered string: ``rgba`` (h, w, 4) uint8, rows bottom to top as ``draw_image`` takes
    them (None: no ink), its lower-left pixel at (``left``, ``bottom``) from the pixel the
    text's origin falls in (y up)."""
    rgba: np.ndarray | None
    left: int
    bottom: int


class TextCache:
    """The process's rendered strings, least recently drawn first out beyond ``max_tiles``.

    A tile is kept per string, resolved font, angle, colour, antialiasing, dpi and the origin's
    position within its pixel on a 1/``subpixel`` grid (FreeType places glyphs on a 1/64 px
    grid: at 64 the tile's glyphs are the ones a direct draw renders; fewer positions reuse a
    tile more often at the price of moving the text by up to half a step). ``enabled`` False:
    every string is drawn directly (the reference the tests and benchmarks/plots.py compare)."""

    def __init__(self, max_tiles: int = 2048, subpixel: int = 64):
        self.max_tiles, self.subpixel, self.enabled = max_tiles, subpixel, True
        self.hits = self.misses = 0
        self._tiles: OrderedDict[tuple, Tile | None] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tiles)

    def clear(self) -> None:
        with self._lock:
            self._tiles.clear()
            self.hits = self.misses = 0

    def get(self, key: tuple):
        """The tile (or None: not cacheable) under ``key``; ``KeyError`` when not kept."""
        with self._lock:
            tile = self._tiles[key]
            self._tiles.move_to_end(key)
            self.hits += 1
            return tile

    def put(self, key: tuple, tile: Tile | None) -> None:
        with self._lock:
            self.misses += 1
            self._tiles[key] = tile
            while len(self._tiles) > self.max_tiles:
                self._tiles.popitem(last=False)


TEXT_CACHE = TextCache()
#: blank pixels around the box a string is rendered in: ink reaching the border means the box
#: was too small (tried again at the string's measured size, else the string is drawn directly)
TILE_MARGIN = 2


#: the rcParams a font lookup depends on (``FontManager.findfont``'s own cache key)
_FONT_RC = tuple(f"font.{key}" for key in ("family", "style", "variant", "weight", "stretch",
                                          "size", "serif", "sans-serif", "cursive", "fantasy",
                                          "monospace"))


def _font_state(prop) -> tuple:
    """What a font lookup depends on: the properties (``FontProperties.__hash__``'s) and the
    rcParams font lists."""
    rc = tuple(tuple(v) if isinstance(v, list) else v for v in (rcParams[k] for k in _FONT_RC))
    return (tuple(prop.get_family()), prop.get_style(), prop.get_variant(), prop.get_weight(),
            prop.get_stretch(), prop.get_size_in_points(), prop.get_file(),
            prop.get_math_fontfamily(), rc)


#: resolved fonts by ``_font_state``: the file (``findfont``) and the line metrics
_FONTS: dict[tuple, str] = {}
_HEIGHTS: dict[tuple, tuple[float, float, float]] = {}


def _resolved(prop, state: tuple) -> str:
    try:
        return _FONTS[state]
    except KeyError:
        return _FONTS.setdefault(state, findfont(prop))


def font_height_metrics(prop, dpi: float) -> tuple[float, float, float]:
    """(ascent, descent, line gap) in pixels of the font ``prop`` resolves to, as
    ``Text._get_layout`` reads them from its OS/2 (else hhea) table on every layout: a font
    lookup and three table reads per text and draw, kept here per font, size and dpi. (None,
    None, None) where the font has neither table (matplotlib then measures "lp")."""
    key = (_font_state(prop), dpi)
    try:
        return _HEIGHTS[key]
    except KeyError:
        pass
    font = get_font(fontManager._find_fonts_by_props(prop))
    metrics = None, None, None
    for table_name, gap, ascent, descent in (
            ("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"),
            ("hhea", "lineGap", "ascent", "descent")):
        table = font.get_sfnt_table(table_name)
        if table is None:
            continue
        scale = 1 / font.get_sfnt_table("head")["unitsPerEm"] * prop.get_size_in_points() \
            * dpi / 72
        metrics = table[ascent] * scale, -table[descent] * scale, table[gap] * scale
        break
    return _HEIGHTS.setdefault(key, metrics)


def _text_key(gc, s: str, prop, angle: float, dpi: float, fx: int, fy: int, mtext) -> tuple:
    """What the pixels of a string depend on. The font as resolved (``findfont``), besides the
    properties, so that another rcParams font list is another tile."""
    state = _font_state(prop)
    font = (*state, _resolved(prop, state))
    shaping = (getattr(mtext, "get_fontfeatures", lambda: None)(),
               getattr(mtext, "get_language", lambda: None)()) if mtext is not None else None
    return (s, font, angle, tuple(gc.get_rgb()), gc.get_alpha(), gc.get_forced_alpha(),
            gc.get_antialiased(), rcParams["text.hinting"], dpi, fx, fy, shaping)


def _render_tile(renderer: RendererAgg, gc, s: str, prop, angle: float, fx: float, fy: float,
                 mtext) -> Tile | None:
    """Render ``s`` alone on a transparent ``RendererAgg`` with its origin at (fx, fy) within
    a pixel (y up), cropped to its ink; None when the ink reaches the tile's border even in a
    tile of the string's measured size."""
    em = prop.get_size_in_points() * renderer.dpi / 72
    # a box from the font size first (measuring the string lays it out once more, a third of
    # a miss's time): an em per character along it, an em up and half an em down across it
    along, up, down = (len(s) + 1) * em, 1.2 * em, 0.6 * em
    tile = _try_tile(renderer.dpi, gc, s, prop, angle, fx, fy, mtext, along, up, down)
    if tile is None:
        w, h, d = renderer.get_text_width_height_descent(s, prop, False)
        tile = _try_tile(renderer.dpi, gc, s, prop, angle, fx, fy, mtext, w + em, h - d + em,
                         d + em)
    return tile


def _try_tile(dpi: float, gc, s: str, prop, angle: float, fx: float, fy: float, mtext,
              along: float, up: float, down: float) -> Tile | None:
    """The tile of ``s`` rendered in a box reaching ``along`` pixels in the string's direction
    from its origin, ``up`` above its baseline and ``down`` below (plus TILE_MARGIN); None when
    its ink reaches the box's border (the box was too small)."""
    m = TILE_MARGIN
    along, up, down = math.ceil(along) + m, math.ceil(up) + m, math.ceil(down) + m
    if angle == 0:      # the string runs right from its baseline's left end
        width, height, ox, oy = along + m, up + down, m, down
    else:               # 90: it runs up, its ascent to the left of the origin
        width, height, ox, oy = up + down, along + m, up, m
    tile = RendererAgg(width, height, dpi)
    tgc = tile.new_gc()
    tgc.copy_properties(gc)
    tgc.set_clip_rectangle(None)
    tgc.set_clip_path(None)
    # draw_text's y runs down from the top; the origin is (ox + fx, oy + fy) measured up
    tile.draw_text(tgc, ox + fx, height - (oy + fy), s, prop, angle, False, mtext)
    tgc.restore()
    rgba = np.asarray(tile.buffer_rgba())
    ink = rgba[..., 3]
    if ink[0].any() or ink[-1].any() or ink[:, 0].any() or ink[:, -1].any():
        return None
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if not rows.size:
        return Tile(None, 0, 0)
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    # rows bottom to top; the crop's bottom row r1 - 1 is height - r1 pixels above the bottom
    return Tile(np.ascontiguousarray(rgba[r0:r1, c0:c1][::-1]), int(c0 - ox),
                int(height - r1 - oy))


def _round(v: float) -> int:
    return int(v + 0.5) if v >= 0 else int(v - 0.5)   # Agg's mpl_round: half away from 0


def _clip(rgba: np.ndarray, left: int, bottom: int, clip, height: float):
    """The part of a tile (rows bottom to top, lower-left pixel at (left, bottom), y up) inside
    the clip box, cut where Agg's text drawing cuts it: at the box's edges rounded to whole
    pixels, the right and top edges excluded (``draw_image``'s clip box keeps one pixel more)."""
    if clip is None:
        return rgba, left, bottom
    x0, y0, x1, y1 = clip.extents
    h, w = rgba.shape[:2]
    c0, c1 = max(_round(x0) - left, 0), min(_round(x1) - left, w)
    # Agg keeps the rows (y down) from round(height - y1) to round(height - y0), excluded
    r0 = max(int(height) - _round(height - y0) - bottom, 0)
    r1 = min(int(height) - _round(height - y1) - bottom, h)
    if c0 >= c1 or r0 >= r1:
        return rgba[:0, :0], left, bottom
    if (c0, r0, c1, r1) == (0, 0, w, h):
        return rgba, left, bottom
    return np.ascontiguousarray(rgba[r0:r1, c0:c1]), left + c0, bottom + r0


class TextCachingRenderer(RendererAgg):
    """Agg, but a plain string at 0 or 90 degrees is rendered once per process (TEXT_CACHE)
    and composited from its tile: matplotlib lays out and renders every glyph of every string
    on every draw, half of a plot's drawing time. Mathtext, TeX, other angles, clip paths and
    the rest of the drawing are Agg's own.

    The fonts' line metrics, which ``Text._get_layout`` looks up on every layout, are kept per
    font, size and dpi (``font_height_metrics``, through the hook matplotlib's PDF and PS
    renderers use)."""

    def _get_font_height_metrics(self, prop):
        if not TEXT_CACHE.enabled:
            return None, None, None          # Text._get_layout reads the font's tables itself
        return font_height_metrics(prop, self.dpi)

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        cache = TEXT_CACHE
        if not cache.enabled or ismath or angle not in (0, 90) \
                or gc.get_clip_path()[0] is not None:
            return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
        q = cache.subpixel
        ix, fx = divmod(round(x * q), q)                  # the origin: pixel, 1/q within it
        iy, fy = divmod(round((self.height - y) * q), q)  # y up from the bottom
        key = _text_key(gc, s, prop, angle, self.dpi, fx, fy, mtext)
        try:
            tile = cache.get(key)
        except KeyError:
            tile = _render_tile(self, gc, s, prop, angle, fx / q, fy / q, mtext)
            cache.put(key, tile)
        if tile is None:
            return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
        if tile.rgba is None:
            return None
        rgba, left, bottom = _clip(tile.rgba, ix + tile.left, iy + tile.bottom,
                                   gc.get_clip_rectangle(), self.height)
        if rgba.size:
            cgc = self.new_gc()              # no clip box, alpha 1: the tile carries the text's
            self.draw_image(cgc, left, bottom, rgba)
            cgc.restore()
        return None


class TextCachingCanvas(FigureCanvasAgg):
    """The Agg canvas of the plots' figures, drawing with a TextCachingRenderer."""

    def get_renderer(self):
        w, h = self.get_width_height(physical=True)
        key = w, h, self.figure.dpi
        if getattr(self, "_text_caching_key", None) != key:
            self.renderer = TextCachingRenderer(w, h, self.figure.dpi)
            self._text_caching_key = key
        return self.renderer


#: the matplotlib series whose text drawing ``TextCachingRenderer`` is tested against
TESTED = ((3, 11),)


def canvas(fig):
    """The figure's Agg canvas: with the text cache where the installed matplotlib is a tested
    series, matplotlib's own ``FigureCanvasAgg`` otherwise (the same pixels, slower text;
    warned once)."""
    from ffexp._compat.gate import supported
    if supported("the plots' text cache", "matplotlib", TESTED):
        return TextCachingCanvas(fig)
    return FigureCanvasAgg(fig)

"""Outputs of a comparison: JSON, CSV, RD plots (one per metric) and a static HTML report."""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from PIL import Image

from ..files import save_png, write_atomic
from .metrics import HIGHER_IS_BETTER, LABELS
from .overlay import color

SECTION_ORDER = ("reference", "text", "masks", "config", "framing")
REPORT_IMAGE_CHECK = (
    "<script>for(const i of document.images){const bad=()=>console.error('image failed to load: '+i.src);"
    "if(i.complete&&!i.naturalWidth)bad();else i.addEventListener('error',bad)}</script>"
)
"""Makes a missing crop or plot visible in the browser console (and to the headless test)."""


def paper_numbers() -> dict[str, Any]:
    """Tables I, II and VIII of the SEDIC paper, shipped as data."""
    return json.loads(resources.files("sedic_kit.eval").joinpath("paper_sedic.json").read_text())


def quoted(dataset: str | None) -> dict[str, list[dict[str, Any]]]:
    """Paper points for ``dataset`` by metric key: ``{"method", "bpp", "value", "table"}``."""
    if dataset is None:
        return {}
    paper = paper_numbers()
    out: dict[str, list[dict[str, Any]]] = {}
    for method, (value, bpp) in paper["table_I"]["datasets"].get(dataset, {}).items():
        out.setdefault("psnr-rgb", []).append({"method": method, "bpp": bpp, "value": value, "table": "I"})
    if paper["table_II"]["dataset"] == dataset:
        for method, row in paper["table_II"]["methods"].items():
            for key, value in row.items():
                if key != "bpp":
                    out.setdefault(key, []).append({"method": method, "bpp": row["bpp"], "value": value, "table": "II"})
    return out


def metric_keys(summaries: list[dict[str, Any]]) -> list[str]:
    """Quality metrics present in any summary, in the suite's order."""
    keys = [k for s in summaries for k in s["results"] if k in LABELS]
    return list(dict.fromkeys(k for k in LABELS if k in keys))


def sections(summaries: list[dict[str, Any]]) -> list[str]:
    found = {k for s in summaries for r in s["images"] for k in r["bits"]}
    return [*(s for s in SECTION_ORDER if s in found), *sorted(found - set(SECTION_ORDER))]


def point_label(summary: dict[str, Any]) -> str:
    """``lite`` or, in a rate sweep, ``lite @ 0.03``."""
    t = summary.get("target_bpp")
    return summary["name"] if t is None else f"{summary['name']} @ {t:g}"


def write_csv(path: Path, summaries: list[dict[str, Any]], bd: list[dict[str, Any]] | None = None) -> None:
    """One row per profile, target rate and image, then one ``mean`` row per profile and rate;
    then, for a sweep, two rows per profile against the anchor (image ``BD-rate % vs ANCHOR`` and
    ``BD-metric vs ANCHOR``) holding each metric's delta in its column."""
    keys = metric_keys(summaries)
    secs = sections(summaries)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["profile", "target_bpp", "image", "width", "height", "bytes", "bpp", *(f"bpp-{s}" for s in secs), *keys])
    for s in summaries:
        target = _cell(s.get("target_bpp"))
        for r in s["images"]:
            row = [s["name"], target, r["image"], r["width"], r["height"], r["bytes"], r["bpp"], *(r["bpp_sections"].get(x, 0.0) for x in secs)]
            writer.writerow([*row, *(_cell(r.get(k)) for k in keys)])
        res = s["results"]
        means = [res["bpp"][0], *(res.get(f"bpp-{x}", [0.0])[0] for x in secs)]
        writer.writerow([s["name"], target, "mean", "", "", "", *means, *(_cell(res.get(k, [None])[0]) for k in keys)])
    for profile in dict.fromkeys(row["profile"] for row in bd or []):
        rows = {row["metric"]: row for row in bd or [] if row["profile"] == profile}
        anchor = next(iter(rows.values()))["anchor"]
        for what, field in (("BD-rate %", "bd_rate"), ("BD-metric", "bd_metric")):
            cells = [_cell(rows[k][field]) if k in rows else "" for k in keys]
            writer.writerow([profile, "", f"{what} vs {anchor}", "", "", "", "", *([""] * len(secs)), *cells])
    write_atomic(path, buf.getvalue().encode())


def _cell(value: Any) -> Any:
    return "" if value is None else value


MIN_SPAN = {"psnr-rgb": 2.0, "ms-ssim-rgb": 0.05}
"""Smallest y range drawn per metric (others: 5% of the values' size): a 0.0008 span is noise, not an axis."""


def _y_limits(key: str, values: list[float]) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    span = max(hi - lo, MIN_SPAN.get(key, 0.05 * max(abs(lo), abs(hi), 1e-3)))
    pad = 0.15 * span
    mid = (lo + hi) / 2
    return mid - span / 2 - pad, mid + span / 2 + pad


def plot_rd(directory: Path, curves: list[dict[str, Any]], paper: dict[str, list[dict[str, Any]]]) -> dict[str, Path]:
    """``<metric>.png``: metric vs achieved mean bpp, one line per profile through its rate points
    (measured) and the paper's points (quoted). Axes start at 0 bpp and span a sane range."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: dict[str, Path] = {}
    for key in metric_keys(curves):
        measured = []
        for c in curves:
            xy = sorted((b, v) for b, v in zip(c["results"]["bpp"], c["results"].get(key, [])) if b is not None and v is not None)
            if xy:
                measured.append((c["name"], xy))
        points = paper.get(key, [])
        if not measured and not points:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=100, layout="constrained")
        for name, xy in measured:
            ax.plot([b for b, _ in xy], [v for _, v in xy], marker="o", linestyle="-", label=f"{name} (measured)")
        xs = [b for _, xy in measured for b, _ in xy] + [p["bpp"] for p in points]
        ys = [v for _, xy in measured for _, v in xy] + [p["value"] for p in points]
        x_max = 1.12 * max(xs)
        for p in points:
            ax.scatter([p["bpp"]], [p["value"]], marker="D", facecolors="none", edgecolors="gray")
            right = p["bpp"] > 0.7 * x_max  # labels near the right edge go to the left of their point
            ax.annotate(p["method"], (p["bpp"], p["value"]), textcoords="offset points", xytext=(-4 if right else 4, 3),
                        ha="right" if right else "left", fontsize=7, color="gray")
        if points:
            ax.scatter([], [], marker="D", facecolors="none", edgecolors="gray", label=f"quoted: SEDIC paper Table {points[0]['table']}")
        arrow = "higher is better" if HIGHER_IS_BETTER[key] else "lower is better"
        ax.set(xlabel="bpp (achieved mean)", ylabel=LABELS[key], title=f"{LABELS[key]} vs rate ({arrow})")
        ax.set_xlim(0, x_max)
        ax.set_ylim(*_y_limits(key, ys))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        path = directory / f"{key}.png"
        _save_fig(fig, path)
        plt.close(fig)
        written[key] = path
    return written


def plot_bits(path: Path, summaries: list[dict[str, Any]], paper_bits: dict[str, float] | None) -> Path:
    """Stacked bars of mean bpp per section for each profile (and the paper's Table VIII)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    secs = sections(summaries)
    bars = [(point_label(s), {x: s["results"].get(f"bpp-{x}", [0.0])[0] or 0.0 for x in secs}) for s in summaries]
    if paper_bits:
        bars.append(("SEDIC paper (quoted)", {x: paper_bits.get(x, 0.0) for x in secs}))
    fig, ax = plt.subplots(figsize=(6.5, 0.6 * len(bars) + 1.8), dpi=100, layout="constrained")
    left = [0.0] * len(bars)
    for x in secs:
        widths = [b[1][x] for b in bars]
        ax.barh([b[0] for b in bars], widths, left=left, label=x)
        left = [lo + w for lo, w in zip(left, widths)]
    ax.set(xlabel="mean bpp", title="Bit allocation per section")
    fig.legend(fontsize=8, ncols=len(secs), loc="outside lower center")
    _save_fig(fig, path)
    plt.close(fig)
    return path


def _save_fig(fig: Any, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None}, bbox_inches="tight", pad_inches=0.15)  # no clipped labels
    write_atomic(path, buf.getvalue())


ZOOM_SCRIPT = """<script>
function zoomTo(group, fx, fy) {
  const z = +group.querySelector('select.zoom').value;
  for (const view of group.querySelectorAll('div.view')) {
    const img = view.querySelector('img'), w = img.naturalWidth || +img.dataset.w, h = img.naturalHeight || +img.dataset.h;
    const side = view.clientWidth, cx = fx * w * z, cy = fy * h * z;
    const x = Math.max(0, Math.min(w * z - side, cx - side / 2)), y = Math.max(0, Math.min(h * z - side, cy - side / 2));
    img.style.transform = `translate(${-x}px, ${-y}px) scale(${z})`;
  }
  group.dataset.fx = fx; group.dataset.fy = fy;
}
for (const group of document.querySelectorAll('div.compare')) {
  for (const view of group.querySelectorAll('div.view')) {
    view.addEventListener('mousemove', ev => {  // the spot under the mouse's place in the window: left edge = image's left
      const r = view.getBoundingClientRect();
      zoomTo(group, (ev.clientX - r.left) / r.width, (ev.clientY - r.top) / r.height);
    });
  }
  group.querySelector('select.zoom').addEventListener('change', () => zoomTo(group, +group.dataset.fx, +group.dataset.fy));
}
</script>"""
"""Synchronized zoom: the mouse over any view pans every view of that image to the same spot
(its place in the window is the spot's place in the image)."""


def linked(path: Path, out: Path, assets: Path, name: str) -> str:
    """``path`` relative to ``out`` (a copy in ``assets`` when it lies elsewhere), for ``src``."""
    try:
        return path.resolve().relative_to(out.resolve()).as_posix()
    except ValueError:
        write_atomic(assets / name, path.read_bytes())
        return (assets / name).relative_to(out).as_posix()


def view_html(src: str, size: tuple[int, int], crop: int, label: str) -> str:
    """One panel of a compare group: the full image behind a ``crop`` x ``crop`` window, centered."""
    e = html.escape
    w, h = size
    x, y = max(0, (w - crop) // 2), max(0, (h - crop) // 2)
    return (
        f'<figure><div class=view style="width:{min(crop, w)}px;height:{min(crop, h)}px"><img alt="{e(label)}" src="{e(src)}" '
        f'data-w={w} data-h={h} style="transform:translate({-x}px,{-y}px)"></div><figcaption>{e(label)}</figcaption></figure>'
    )


def sent_html(record: dict[str, Any]) -> str:
    """What the file transmits: the caption and each object's name and details, in its mask's color."""
    e = html.escape
    if not record.get("semantics", True):
        return "<span class=warn>coded without semantics</span>"
    parts = [f"<q>{e(record['caption'])}</q>" if record.get("caption") else "<span class=na>no caption</span>"]
    for i, obj in enumerate(record.get("descriptions", [])):
        r, g, b = color(i)
        parts.append(f'<br><span class=swatch style="background:rgb({r},{g},{b})"></span><b>{e(obj["name"])}</b>: {e(obj["details"])}')
    return "".join(parts)


def bits_cell(bits: int, total: int) -> str:
    return f"<td>{bits} <span class=na>({100 * bits / total:.0f}%)</span></td>" if total else f"<td>{bits}</td>"


def write_html(
    out: Path,
    summaries: list[dict[str, Any]],
    original: Callable[[str], Image.Image],
    plots: dict[str, Path],
    bits_plot: Path,
    crop: int = 256,
    setup: dict[str, Any] | None = None,
    bd: list[dict[str, Any]] | None = None,
) -> Path:
    """``report.html``: the setup (FID/KID protocol included), warnings, mean table, BD table,
    plots, then per image the original beside every reconstruction (and, without a sweep, the
    decoded reference) and the transmitted masks over the reconstruction, all at full resolution
    behind one synchronized zoom; the transmitted caption and objects, and the bits per section."""
    assets = out / "report"
    keys = metric_keys(summaries)
    secs = sections(summaries)
    sweep = any(s.get("target_bpp") is not None for s in summaries)
    e = html.escape
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>sedic-kit comparison</title><style>",
        "body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:3px 7px;text-align:right;font-size:13px}th:first-child,td:first-child{text-align:left}"
        "td.sent{text-align:left;max-width:40em}figure{display:inline-block;margin:4px;text-align:center;vertical-align:top}"
        "figcaption{font-size:12px;max-width:%dpx}div.view{overflow:hidden;position:relative;border:1px solid #999}"
        "div.view img{position:absolute;left:0;top:0;transform-origin:0 0;image-rendering:pixelated;max-width:none}"
        "img.plot{max-width:48%%;margin:4px}.na{color:#999}.warn{color:#b00;font-weight:bold}.swatch{display:inline-block;width:.8em;"
        "height:.8em;margin-right:.3em}dl{font-size:14px}dt{font-weight:bold;float:left;clear:left;width:9em}dd{margin-left:10em}" % crop,
        "</style></head><body><h1>sedic-kit comparison</h1>",
    ]
    if setup:
        parts.append(_setup_html(setup))
    warned = [(point_label(s), w) for s in summaries for w in s.get("warnings", [])]
    if warned:
        parts.append("<h2>Warnings</h2><ul>" + "".join(f"<li class=warn>{e(p)}: {e(w)}</li>" for p, w in warned) + "</ul>")
    flagged: dict[str, None] = {}
    parts.append("<h2>Mean results</h2><table><tr><th>profile</th><th>target bpp</th><th>images</th><th>with semantics</th><th>bpp</th>")
    parts += [f"<th>bpp {e(s)}</th>" for s in secs] + [f"<th>{e(LABELS[k])}</th>" for k in keys] + ["</tr>"]
    for s in summaries:
        res = s["results"]
        target = "-" if s.get("target_bpp") is None else f"{s['target_bpp']:g}"
        carried = sum(1 for r in s["images"] if r.get("semantics", True))
        sem = f"<td>{carried}</td>" if carried == len(s["images"]) else f"<td class=warn>{carried}</td>"
        row = [f"<td>{e(s['name'])}</td><td>{target}</td><td>{len(s['images'])}</td>{sem}<td>{res['bpp'][0]:.5f}</td>"]
        row += [f"<td>{(res.get(f'bpp-{x}', [0.0])[0] or 0.0):.5f}</td>" for x in secs]
        for k in keys:
            notes = s.get("realism", {}).get("metrics", {}).get(k, {}).get("flags", [])
            flagged.update(dict.fromkeys(f"{LABELS[k]}: {n}" for n in notes))
            cell = _fmt_cell(res.get(k, [None])[0])
            row.append(cell.replace("</td>", " *</td>") if notes and res.get(k, [None])[0] is not None else cell)
        parts.append("<tr>" + "".join(row) + "</tr>")
    parts.append("</table>")
    if flagged:
        parts.append("<p>" + "<br>".join(f"* {e(n)}" for n in flagged) + "</p>")
    if bd:
        parts.append(_bd_html(bd))
    missing = {k: v for s in summaries for k, v in s.get("unavailable", {}).items()}
    if missing:
        parts.append("<h3>Unavailable metrics</h3><ul>" + "".join(f"<li><b>{e(LABELS[k])}</b>: {e(v)}</li>" for k, v in missing.items()) + "</ul>")
    parts.append("<h2>Rate-distortion-perception</h2>")
    if setup and setup.get("paper_points") not in (None, "shown"):
        parts.append(f"<p>The paper's numbers are not drawn: {e(setup['paper_points'])}.</p>")
    parts += [f'<img class=plot alt="{e(LABELS[k])} vs bpp" src="{e(p.relative_to(out).as_posix())}">' for k, p in plots.items()]
    parts.append(f'<h2>Bit allocation</h2><img class=plot alt="bit allocation" src="{e(bits_plot.relative_to(out).as_posix())}">')
    parts.append(
        "<h2>Per image</h2><p>Every view shows the same spot at full resolution: move the mouse over any of them to pan all, "
        "choose the zoom beside each image. Masks: the decoded masks over the reconstruction, in their objects' colors.</p>"
    )
    by_point = [{r["image"]: r for r in s["images"]} for s in summaries]
    per_image = _per_image(summaries)
    kinds = (("recon", "reconstruction"),) if sweep else (("reference", "reference (upsampled)"), ("recon", "reconstruction"))
    for name in by_point[0]:
        stem = Path(name).stem
        image = original(name)
        src = save_png(image, assets / f"{stem}.original.png").relative_to(out).as_posix()
        zoom = "".join(f"<option value={z}{' selected' if z == 1 else ''}>{z}x</option>" for z in (1, 2, 4, 8))
        parts.append(f"<h3>{e(name)}</h3><div class=compare data-fx=0.5 data-fy=0.5><p>zoom <select class=zoom>{zoom}</select></p>")
        parts.append(view_html(src, image.size, crop, "original"))
        for s, recs in zip(summaries, by_point):
            run = Path(s["dir"])
            tag = s["name"] if s.get("target_bpp") is None else f"{s['name']}.bpp-{s['target_bpp']:g}"
            bpp = f" ({recs[name]['bpp']:.4f} bpp)" if name in recs else ""
            views = [*kinds, *((("masks", "masks"),) if (run / "masks" / f"{stem}.png").is_file() else ())]
            for kind, label in views:
                path = run / kind / f"{stem}.png"
                with Image.open(path) as im:
                    size = im.size
                parts.append(view_html(linked(path, out, assets, f"{stem}.{tag}.{kind}.png"), size, crop, f"{point_label(s)}: {label}{bpp}"))
        parts.append("</div><table><tr><th>profile</th><th>target bpp</th><th>bpp</th>" + "".join(f"<th>{e(x)} bits</th>" for x in secs))
        parts.append("".join(f"<th>{e(LABELS[k])}</th>" for k in keys if k in per_image) + "<th>transmitted caption and objects</th></tr>")
        for s, recs in zip(summaries, by_point):
            r = recs.get(name)
            if r is None:
                continue
            target = "-" if s.get("target_bpp") is None else f"{s['target_bpp']:g}"
            total = sum(r["bits"].values())
            cells = [f"<td>{e(s['name'])}</td><td>{target}</td><td>{r['bpp']:.5f}</td>", *(bits_cell(r["bits"].get(x, 0), total) for x in secs)]
            cells += [_fmt_cell(r.get(k)) for k in keys if k in per_image]
            cells.append(f"<td class=sent>{sent_html(r)}</td>")
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
    parts.append(REPORT_IMAGE_CHECK)
    parts.append(ZOOM_SCRIPT)
    parts.append("</body></html>\n")
    path = out / "report.html"
    write_atomic(path, "\n".join(parts).encode())
    return path


def _setup_html(setup: dict[str, Any]) -> str:
    """What was run: data folder, protocol, image count against the paper's set, rates, version, command."""
    e = html.escape
    count = f"{setup['images']}"
    if setup.get("paper_set_images"):
        paper = setup["paper_set_images"]
        verdict = "the paper's full set" if setup["images"] == paper else "not the paper's set: its numbers are not comparable"
        count += f" of the paper's {paper} {e(str(setup['paper_set']))} images ({verdict})"
    rows = [
        ("data", f"<code>{e(setup['data'])}</code>"),
        ("protocol", e(setup["protocol"])),
        ("images", count),
        ("target rates", ", ".join(f"{t:g}" for t in setup["targets"]) + " bpp" if setup["targets"] else "each profile's own setting"),
        ("BD anchor", e(setup["anchor"])),
        *((("FID/KID", _realism_html(setup["realism"])),) if setup.get("realism") else ()),
        ("sedic-kit", e(setup["sedic_kit_version"])),
        ("command", f"<code>{e(setup['command'])}</code>"),
    ]
    return "<h2>Setup</h2><dl>" + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _realism_html(realism: dict[str, Any]) -> str:
    """The FID/KID protocol line (and whether they were computed here)."""
    e = html.escape
    state = "" if realism["metrics"] else " (not computed here: see Unavailable metrics)"
    count = f"; {realism['samples']} samples from these images" if "samples" in realism else ""
    warn = "".join(f"<br><span class=warn>{e(f)}</span>" for f in realism.get("flags", []))
    return f"<b>{e(realism['name'])}</b>: {e(realism['description'])}{count}{state}{warn}"


def _bd_html(bd: list[dict[str, Any]]) -> str:
    """BD-rate (%, negative: fewer bits at equal quality) and BD-metric (test minus anchor) per profile and metric."""
    e = html.escape
    anchor = bd[0]["anchor"]
    parts = [
        f"<h2>Bjontegaard deltas vs {e(anchor)}</h2><p>PCHIP interpolation over the overlapping range; BD-rate &lt; 0: "
        "fewer bits for the same quality; BD-metric: test minus anchor at the same rate.</p>",
        "<table><tr><th>profile</th><th>metric</th><th>BD-rate (%)</th><th>BD-metric</th><th>note</th></tr>",
    ]
    for row in bd:
        rate = "<td class=na>n/a</td>" if row["bd_rate"] is None else f"<td>{row['bd_rate']:+.2f}</td>"
        metric = "<td class=na>n/a</td>" if row["bd_metric"] is None else f"<td>{row['bd_metric']:+.4f}</td>"
        parts.append(f"<tr><td>{e(row['profile'])}</td><td>{e(LABELS[row['metric']])}</td>{rate}{metric}<td>{e(row['note'] or '')}</td></tr>")
    return "".join(parts) + "</table>"


def _per_image(summaries: list[dict[str, Any]]) -> set[str]:
    return {k for s in summaries for r in s["images"] for k in r if k in LABELS}


def _fmt_cell(value: float | None) -> str:
    return "<td class=na>n/a</td>" if value is None else f"<td>{value:.4f}</td>"

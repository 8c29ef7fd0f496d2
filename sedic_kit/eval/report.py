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

from ..codec import write_atomic
from .metrics import HIGHER_IS_BETTER, LABELS

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


def write_csv(path: Path, summaries: list[dict[str, Any]]) -> None:
    """One row per profile and image, then one ``mean`` row per profile."""
    keys = metric_keys(summaries)
    secs = sections(summaries)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["profile", "image", "width", "height", "bytes", "bpp", *(f"bpp-{s}" for s in secs), *keys])
    for s in summaries:
        for r in s["images"]:
            row = [s["name"], r["image"], r["width"], r["height"], r["bytes"], r["bpp"], *(r["bpp_sections"].get(x, 0.0) for x in secs)]
            writer.writerow([*row, *(_cell(r.get(k)) for k in keys)])
        res = s["results"]
        means = [res["bpp"][0], *(res.get(f"bpp-{x}", [0.0])[0] for x in secs)]
        writer.writerow([s["name"], "mean", "", "", "", *means, *(_cell(res.get(k, [None])[0]) for k in keys)])
    write_atomic(path, buf.getvalue().encode())


def _cell(value: Any) -> Any:
    return "" if value is None else value


def plot_rd(directory: Path, summaries: list[dict[str, Any]], paper: dict[str, list[dict[str, Any]]]) -> dict[str, Path]:
    """``<metric>.png``: metric vs bpp, every profile (measured) and paper points (quoted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: dict[str, Path] = {}
    for key in metric_keys(summaries):
        measured = [(s["name"], s["results"]["bpp"], s["results"][key]) for s in summaries if any(v is not None for v in s["results"].get(key, []))]
        points = paper.get(key, [])
        if not measured and not points:
            continue
        fig, ax = plt.subplots(figsize=(6, 4.2), dpi=100)
        for name, bpps, values in measured:
            xy = [(b, v) for b, v in zip(bpps, values) if v is not None]
            ax.plot([b for b, _ in xy], [v for _, v in xy], marker="o", linestyle="-", label=f"{name} (measured)")
        for p in points:
            ax.scatter([p["bpp"]], [p["value"]], marker="D", facecolors="none", edgecolors="gray")
            ax.annotate(p["method"], (p["bpp"], p["value"]), textcoords="offset points", xytext=(4, 3), fontsize=7, color="gray")
        if points:
            ax.scatter([], [], marker="D", facecolors="none", edgecolors="gray", label=f"quoted: SEDIC paper Table {points[0]['table']}")
        arrow = "higher is better" if HIGHER_IS_BETTER[key] else "lower is better"
        ax.set(xlabel="bpp", ylabel=LABELS[key], title=f"{LABELS[key]} vs rate ({arrow})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
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
    bars = [(s["name"], {x: s["results"].get(f"bpp-{x}", [0.0])[0] or 0.0 for x in secs}) for s in summaries]
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
    fig.savefig(buf, format="png", metadata={"Software": None})
    write_atomic(path, buf.getvalue())


def center_crop(image: Image.Image, side: int) -> Image.Image:
    w, h = image.size
    side = min(side, w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return image.crop((left, top, left + side, top + side))


def save_crop(image: Image.Image, path: Path, side: int) -> str:
    buf = io.BytesIO()
    center_crop(image.convert("RGB"), side).save(buf, "PNG")
    write_atomic(path, buf.getvalue())
    return path.name


def write_html(
    out: Path,
    summaries: list[dict[str, Any]],
    original: Callable[[str], Image.Image],
    plots: dict[str, Path],
    bits_plot: Path,
    crop: int = 256,
) -> Path:
    """``report.html`` with crops in ``report/``: original, then reference and reconstruction per profile."""
    assets = out / "report"
    keys = metric_keys(summaries)
    secs = sections(summaries)
    e = html.escape
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>sedic-kit comparison</title><style>",
        "body{font-family:sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:3px 7px;text-align:right;font-size:13px}th:first-child,td:first-child{text-align:left}"
        "figure{display:inline-block;margin:4px;text-align:center}figcaption{font-size:12px}img.crop{width:%dpx;height:auto;"
        "image-rendering:pixelated}img.plot{max-width:48%%;margin:4px}.na{color:#999}" % crop,
        "</style></head><body><h1>sedic-kit comparison</h1>",
    ]
    parts.append("<h2>Mean results</h2><table><tr><th>profile</th><th>images</th><th>bpp</th>")
    parts += [f"<th>bpp {e(s)}</th>" for s in secs] + [f"<th>{e(LABELS[k])}</th>" for k in keys] + ["</tr>"]
    for s in summaries:
        res = s["results"]
        row = [f"<td>{e(s['name'])}</td><td>{len(s['images'])}</td><td>{res['bpp'][0]:.5f}</td>"]
        row += [f"<td>{(res.get(f'bpp-{x}', [0.0])[0] or 0.0):.5f}</td>" for x in secs]
        row += [_fmt_cell(res.get(k, [None])[0]) for k in keys]
        parts.append("<tr>" + "".join(row) + "</tr>")
    parts.append("</table>")
    missing = {k: v for s in summaries for k, v in s.get("unavailable", {}).items()}
    if missing:
        parts.append("<h3>Unavailable metrics</h3><ul>" + "".join(f"<li><b>{e(LABELS[k])}</b>: {e(v)}</li>" for k, v in missing.items()) + "</ul>")
    parts.append("<h2>Rate-distortion-perception</h2>")
    parts += [f'<img class=plot alt="{e(LABELS[k])} vs bpp" src="{e(p.relative_to(out).as_posix())}">' for k, p in plots.items()]
    parts.append(f'<h2>Bit allocation</h2><img class=plot alt="bit allocation" src="{e(bits_plot.relative_to(out).as_posix())}">')
    parts.append("<h2>Per image</h2>")
    by_profile = [{r["image"]: r for r in s["images"]} for s in summaries]
    for name in by_profile[0]:
        stem = Path(name).stem
        parts.append(f"<h3>{e(name)}</h3><div>")
        src = save_crop(original(name), assets / f"{stem}.original.png", crop)
        parts.append(f'<figure><img class=crop alt="original" src="report/{e(src)}"><figcaption>original</figcaption></figure>')
        for s in summaries:
            run = Path(s["dir"])
            for kind, label in (("reference", "reference (upsampled)"), ("recon", "reconstruction")):
                with Image.open(run / kind / f"{stem}.png") as im:
                    f = save_crop(im, assets / f"{stem}.{s['name']}.{kind}.png", crop)
                parts.append(f'<figure><img class=crop alt="{e(s["name"])} {kind}" src="report/{e(f)}"><figcaption>{e(s["name"])}: {label}</figcaption></figure>')
        parts.append("</div><table><tr><th>profile</th><th>bpp</th>" + "".join(f"<th>{e(x)} bits</th>" for x in secs))
        parts.append("".join(f"<th>{e(LABELS[k])}</th>" for k in keys if k in _per_image(summaries)) + "</tr>")
        for s, recs in zip(summaries, by_profile):
            r = recs.get(name)
            if r is None:
                continue
            cells = [f"<td>{e(s['name'])}</td><td>{r['bpp']:.5f}</td>", *(f"<td>{r['bits'].get(x, 0)}</td>" for x in secs)]
            cells += [_fmt_cell(r.get(k)) for k in keys if k in _per_image(summaries)]
            parts.append("<tr>" + "".join(cells) + "</tr>")
        parts.append("</table>")
    parts.append(REPORT_IMAGE_CHECK)
    parts.append("</body></html>\n")
    path = out / "report.html"
    write_atomic(path, "\n".join(parts).encode())
    return path


def _per_image(summaries: list[dict[str, Any]]) -> set[str]:
    return {k for s in summaries for r in s["images"] for k in r if k in LABELS}


def _fmt_cell(value: float | None) -> str:
    return "<td class=na>n/a</td>" if value is None else f"<td>{value:.4f}</td>"

/**
 * Inline SVG charts as strings: the report must open anywhere, offline, with no script and no external asset.
 * Every text that comes from data is escaped.
 */

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A number short enough for an axis tick. */
export function fmtTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(3)}k`;
  return String(+v.toPrecision(3));
}

/** About `count` round-valued ticks covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) out.push(+t.toPrecision(12));
  return out;
}

export interface SeriesPoint {
  x: number;
  /** null leaves a gap. */
  y: number | null;
  /** Half-height of an error bar (a standard deviation). */
  err?: number;
}

export interface Series {
  name: string;
  points: SeriesPoint[];
  color?: string;
  dashed?: boolean;
  /** Draw a dot at each point (default: when the series has 30 points or fewer). */
  dots?: boolean;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  width?: number;
  height?: number;
  /** Fixed y range; by default the data's range, padded. */
  yDomain?: [number, number];
  /** Ticks at exactly these x values (e.g. K = 1, 5, 10, 20), evenly spaced whatever their values. */
  categoricalX?: number[];
  /** Vertical markers, e.g. the released version. */
  markers?: { x: number; label: string }[];
  /** Horizontal reference lines, e.g. a target score. */
  levels?: { y: number; label: string }[];
}

interface Frame {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

function svgOpen(width: number, height: number, title: string): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeXml(title)}">` +
    `<title>${escapeXml(title)}</title>` +
    `<text x="${width / 2}" y="20" text-anchor="middle" class="chart-title">${escapeXml(title)}</text>`
  );
}

function legend(series: readonly { name: string; color: string; dashed?: boolean }[], x: number, y: number, width: number): string {
  let out = '';
  let cx = x;
  let cy = y;
  for (const s of series) {
    const w = 28 + s.name.length * 6.6 + 14;
    if (cx + w > x + width && cx > x) {
      cx = x;
      cy += 18;
    }
    out +=
      `<line x1="${cx}" y1="${cy - 4}" x2="${cx + 22}" y2="${cy - 4}" stroke="${s.color}" stroke-width="2.5"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>` +
      `<text x="${cx + 27}" y="${cy}" class="legend">${escapeXml(s.name)}</text>`;
    cx += w;
  }
  return out;
}

/** Rows the legend of `names` takes at `width`, to size the chart around it. */
function legendRows(names: readonly string[], width: number): number {
  let rows = 1;
  let used = 0;
  for (const n of names) {
    const w = 28 + n.length * 6.6 + 14;
    if (used + w > width && used > 0) {
      rows++;
      used = 0;
    }
    used += w;
  }
  return names.length === 0 ? 0 : rows;
}

export function lineChart(o: LineChartOptions): string {
  const width = o.width ?? 540;
  const plotW = width - 70 - 20;
  const rows = legendRows(o.series.map((s) => s.name), plotW);
  const height = (o.height ?? 320) + (rows - 1) * 18;
  const f: Frame = { left: 70, top: 34 + rows * 18, right: width - 20, bottom: height - 46 };
  const colored = o.series.map((s, i) => ({ ...s, color: s.color ?? PALETTE[i % PALETTE.length]! }));
  const ys = colored.flatMap((s) => s.points.flatMap((p) => (p.y === null ? [] : [p.y - (p.err ?? 0), p.y + (p.err ?? 0)])));
  const xs = o.categoricalX ?? colored.flatMap((s) => s.points.map((p) => p.x));
  let [y0, y1] = o.yDomain ?? [Math.min(...ys), Math.max(...ys)];
  if (!Number.isFinite(y0) || !Number.isFinite(y1)) [y0, y1] = [0, 1];
  if (o.yDomain === undefined) {
    const pad = (y1 - y0) * 0.06 || Math.abs(y1) * 0.1 || 1;
    y0 -= pad;
    y1 += pad;
  }
  let x0 = Math.min(...xs);
  let x1 = Math.max(...xs);
  if (!Number.isFinite(x0) || !Number.isFinite(x1)) [x0, x1] = [0, 1];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  const cat = o.categoricalX;
  const px = (x: number): number => {
    if (cat !== undefined) {
      const i = cat.indexOf(x);
      const slot = (f.right - f.left) / Math.max(1, cat.length);
      return f.left + slot * ((i < 0 ? 0 : i) + 0.5);
    }
    return f.left + ((x - x0) / (x1 - x0)) * (f.right - f.left);
  };
  const py = (y: number): number => f.bottom - ((Math.min(y1, Math.max(y0, y)) - y0) / (y1 - y0)) * (f.bottom - f.top);

  let out = svgOpen(width, height, o.title);
  out += legend(colored, f.left, 34 + 14, plotW);
  for (const t of niceTicks(y0, y1)) {
    if (t < y0 || t > y1) continue;
    out += `<line x1="${f.left}" y1="${py(t)}" x2="${f.right}" y2="${py(t)}" class="grid"/><text x="${f.left - 6}" y="${py(t) + 4}" text-anchor="end" class="tick">${fmtTick(t)}</text>`;
  }
  const xTicks = cat ?? niceTicks(x0, x1, 6).filter((t) => t >= x0 && t <= x1);
  for (const t of xTicks) {
    out += `<line x1="${px(t)}" y1="${f.bottom}" x2="${px(t)}" y2="${f.bottom + 4}" class="axis"/><text x="${px(t)}" y="${f.bottom + 17}" text-anchor="middle" class="tick">${fmtTick(t)}</text>`;
  }
  out += `<rect x="${f.left}" y="${f.top}" width="${f.right - f.left}" height="${f.bottom - f.top}" class="frame"/>`;
  out += `<text x="${(f.left + f.right) / 2}" y="${height - 10}" text-anchor="middle" class="axis-label">${escapeXml(o.xLabel)}</text>`;
  out += `<text x="16" y="${(f.top + f.bottom) / 2}" text-anchor="middle" class="axis-label" transform="rotate(-90 16 ${(f.top + f.bottom) / 2})">${escapeXml(o.yLabel)}</text>`;
  for (const m of o.markers ?? []) {
    const x = px(m.x);
    // Near the right edge the label goes to the left of the line, so it stays inside the frame.
    const right = x > f.right - 70;
    out += `<line x1="${x}" y1="${f.top}" x2="${x}" y2="${f.bottom}" class="marker"/><text x="${right ? x - 4 : x + 4}" y="${f.bottom - 6}"${right ? ' text-anchor="end"' : ''} class="marker-label">${escapeXml(m.label)}</text>`;
  }
  for (const l of o.levels ?? []) {
    if (l.y < y0 || l.y > y1) continue;
    out += `<line x1="${f.left}" y1="${py(l.y)}" x2="${f.right}" y2="${py(l.y)}" class="marker"/><text x="${f.right - 4}" y="${py(l.y) - 4}" text-anchor="end" class="marker-label">${escapeXml(l.label)}</text>`;
  }
  for (const s of colored) {
    const pts = s.points.filter((p) => Number.isFinite(p.x)).sort((a, b) => a.x - b.x);
    let d = '';
    let pen = false;
    for (const p of pts) {
      if (p.y === null || !Number.isFinite(p.y)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${px(p.x).toFixed(1)} ${py(p.y).toFixed(1)}`;
      pen = true;
    }
    const dash = s.dashed ? ' stroke-dasharray="5 3"' : '';
    out += `<g class="series"><title>${escapeXml(s.name)}</title><path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`;
    const dots = s.dots ?? pts.length <= 30;
    for (const p of pts) {
      if (p.y === null || !Number.isFinite(p.y)) continue;
      const x = px(p.x).toFixed(1);
      if (p.err !== undefined && p.err > 0) {
        out += `<line x1="${x}" y1="${py(p.y - p.err).toFixed(1)}" x2="${x}" y2="${py(p.y + p.err).toFixed(1)}" stroke="${s.color}" stroke-width="1.2" opacity="0.7"/>`;
      }
      if (dots) out += `<circle cx="${x}" cy="${py(p.y).toFixed(1)}" r="3" fill="${s.color}"/>`;
    }
    out += '</g>';
  }
  return `${out}</svg>`;
}

export interface Bar {
  label: string;
  /** null draws no bar and shows `note` (e.g. "target not reached"). */
  value: number | null;
  note?: string;
  color?: string;
}

export interface BarChartOptions {
  title: string;
  xLabel: string;
  bars: Bar[];
  width?: number;
  format?: (v: number) => string;
}

/** Horizontal bars, one per label: readable with long method names. */
export function barChart(o: BarChartOptions): string {
  const width = o.width ?? 540;
  const rowH = 26;
  const labelW = 14 + Math.min(190, Math.max(60, ...o.bars.map((b) => b.label.length * 7)));
  const f: Frame = { left: labelW, top: 36, right: width - 110, bottom: 36 + rowH * Math.max(1, o.bars.length) };
  const height = f.bottom + 40;
  const fmt = o.format ?? fmtTick;
  const max = Math.max(0, ...o.bars.map((b) => b.value ?? 0));
  const ticks = niceTicks(0, max > 0 ? max : 1, 4);
  // The last tick must reach the longest bar, or the bar runs past the axis.
  const step = ticks.length > 1 ? ticks[1]! - ticks[0]! : 1;
  while (ticks.at(-1)! < max) ticks.push(+(ticks.at(-1)! + step).toPrecision(12));
  const top = ticks.at(-1)! > 0 ? ticks.at(-1)! : 1;
  const px = (v: number): number => f.left + (v / top) * (f.right - f.left);
  let out = svgOpen(width, height, o.title);
  for (const t of ticks) {
    out += `<line x1="${px(t)}" y1="${f.top}" x2="${px(t)}" y2="${f.bottom}" class="grid"/><text x="${px(t)}" y="${f.bottom + 15}" text-anchor="middle" class="tick">${escapeXml(fmt(t))}</text>`;
  }
  o.bars.forEach((b, i) => {
    const y = f.top + i * rowH;
    const color = b.color ?? PALETTE[i % PALETTE.length]!;
    out += `<text x="${f.left - 8}" y="${y + rowH / 2 + 4}" text-anchor="end" class="tick">${escapeXml(b.label)}</text>`;
    if (b.value !== null && Number.isFinite(b.value)) {
      const w = Math.max(1, px(b.value) - f.left);
      out += `<rect x="${f.left}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${color}"><title>${escapeXml(`${b.label}: ${fmt(b.value)}`)}</title></rect>`;
      out += `<text x="${f.left + w + 5}" y="${y + rowH / 2 + 4}" class="value">${escapeXml(b.note ?? fmt(b.value))}</text>`;
    } else {
      out += `<text x="${f.left + 5}" y="${y + rowH / 2 + 4}" class="value muted">${escapeXml(b.note ?? 'n/a')}</text>`;
    }
  });
  out += `<line x1="${f.left}" y1="${f.top}" x2="${f.left}" y2="${f.bottom}" class="axis"/>`;
  out += `<text x="${(f.left + f.right) / 2}" y="${height - 8}" text-anchor="middle" class="axis-label">${escapeXml(o.xLabel)}</text>`;
  return `${out}</svg>`;
}

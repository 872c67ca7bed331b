// What must never leave a site, as search patterns: the binary encodings (float32 and float64, little-endian) of
// the site's feature values, standardised and as read, and the text of its identifiers (flow ids, IP addresses,
// timestamps), labels and long raw values. Used on the bytes an agent sends and on the lines it logs. Results are
// counts, so that a failing assertion never prints a site's value either.

/** CIC-IDS2017 CSV layout: id, Flow ID, Src IP, Src Port, Dst IP, Dst Port, Protocol, Timestamp, features..., Label, Attempted. */
const ID_COLUMNS = [1, 2, 4, 7];
const FIRST_FEATURE = 8;
const TRAILING = 2;

export interface LeakProbes {
  /** Bit patterns of float32 encodings. */
  float32: Set<number>;
  /** Bit patterns of float64 encodings. */
  float64: Set<bigint>;
  /** Identifier and value strings, matched as whole tokens. */
  tokens: Set<string>;
}

export function emptyProbes(): LeakProbes {
  return { float32: new Set(), float64: new Set(), tokens: new Set() };
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const f64 = new Float64Array(1);
const u64 = new BigUint64Array(f64.buffer);

/** Metrics over at most a few thousand flows are ratios with denominators in this range. */
const MAX_DENOMINATOR = 4096;

function smallRatio(v: number): boolean {
  for (let q = 2; q <= MAX_DENOMINATOR; q++) {
    const p = v * q;
    if (Math.abs(p - Math.round(p)) <= 1e-9 * Math.max(1, Math.abs(p))) return true;
  }
  return false;
}

/**
 * Small integers (0, 1, 6, 80, ...) also occur in honest messages (counts, versions, a float that happens to be 1)
 * and identify nothing, and so do ratios of small integers (8/9 is a flow's packet ratio and also a site's F1 on
 * nine flows); both are left out. Any other value is distinctive enough to search for.
 */
function distinctive(v: number): boolean {
  if (!Number.isFinite(v)) return false;
  if (Number.isInteger(v)) return Math.abs(v) >= 65_536;
  return !smallRatio(v);
}

export function addValue(p: LeakProbes, v: number): void {
  if (!distinctive(v)) return;
  f32[0] = v;
  if (distinctive(f32[0]!)) p.float32.add(u32[0]!);
  f64[0] = v;
  p.float64.add(u64[0]!);
  f64[0] = f32[0]!;
  p.float64.add(u64[0]!);
}

/** Probes for a CSV text of the CIC-IDS2017 layout and, when given, the standardised features read from it. */
export function csvProbes(csvText: string, standardised?: Float32Array): LeakProbes {
  const p = emptyProbes();
  const rows = csvText.trim().split('\n').slice(1).map((l) => l.split(','));
  for (const r of rows) {
    for (const c of ID_COLUMNS) if (r[c] !== undefined && r[c]!.length >= 7) p.tokens.add(r[c]!);
    p.tokens.add(r[r.length - TRAILING]!); // Label
    for (const field of r.slice(FIRST_FEATURE, -TRAILING)) {
      const v = Number(field);
      addValue(p, v);
      // A raw value as text: long enough to identify a flow (durations, rates with many digits).
      if (field.replace(/[-.]/g, '').length >= 6 && distinctive(v)) p.tokens.add(field);
    }
  }
  if (standardised) for (const v of standardised) addValue(p, v);
  return p;
}

export interface LeakCount {
  float32: number;
  float64: number;
  tokens: number;
}

/** How many probes occur in `bytes`, as binary encodings (at any byte offset) and as whole-token text. */
export function scanBytes(bytes: Buffer, p: LeakProbes): LeakCount {
  const seen32 = new Set<number>();
  for (let i = 0; i + 4 <= bytes.length; i++) seen32.add(bytes.readUInt32LE(i));
  let float32 = 0;
  for (const bits of p.float32) if (seen32.has(bits)) float32++;
  let float64 = 0;
  const probe = Buffer.alloc(8);
  for (const bits of p.float64) {
    // The low half must occur first; only then is the full pattern searched for.
    if (!seen32.has(Number(bits & 0xffff_ffffn))) continue;
    probe.writeBigUInt64LE(bits);
    if (bytes.indexOf(probe) !== -1) float64++;
  }
  return { float32, float64, tokens: scanText(bytes.toString('latin1'), p) };
}

/** How many token probes occur in `text` as whole tokens (not as part of a longer number or address). */
export function scanText(text: string, p: LeakProbes): number {
  let found = 0;
  for (const t of p.tokens) {
    let at = text.indexOf(t);
    while (at !== -1) {
      if (!isTokenChar(text[at - 1]) && !isTokenChar(text[at + t.length])) {
        found++;
        break;
      }
      at = text.indexOf(t, at + 1);
    }
  }
  return found;
}

function isTokenChar(c: string | undefined): boolean {
  return c !== undefined && /[0-9A-Za-z.]/.test(c);
}

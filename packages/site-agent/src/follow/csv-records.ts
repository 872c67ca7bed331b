/**
 * CSV records from a byte stream, fast enough that reading is not what limits `detect`: a line without quotes
 * (nearly every line of a flow export) is split on commas directly, and only a line with a quote goes through
 * the full RFC 4180 reading (quoted fields, "" escapes, line breaks inside quotes). A record is handed over as
 * soon as its line ending arrives, which on live input (a followed file, stdin) is what lets the newest flow be
 * scored at once. Lenient where flow exports are untidy: quotes inside an unquoted field are kept as they are,
 * text after a closing quote is kept, empty lines are skipped, CRLF and LF both end a line, and a UTF-8 BOM is
 * dropped. A record longer than `maxRecordBytes` (an unterminated quote swallowing the file) is skipped.
 */
export interface CsvRecordsOptions {
  maxRecordBytes?: number;
  /** Called for each record skipped as unreadable. */
  onSkip?: () => void;
}

/** Fields of one record, and whether it ends inside an open quoted field (its line break belongs to the field). */
export function parseQuotedLine(line: string): { fields: string[]; open: boolean } {
  const fields: string[] = [];
  let i = 0;
  const n = line.length;
  for (;;) {
    if (i < n && line.charCodeAt(i) === 0x22) {
      let value = '';
      let j = i + 1;
      for (;;) {
        const q = line.indexOf('"', j);
        if (q < 0) return { fields, open: true };
        value += line.slice(j, q);
        if (line.charCodeAt(q + 1) === 0x22) {
          value += '"';
          j = q + 2;
          continue;
        }
        j = q + 1;
        break;
      }
      const comma = line.indexOf(',', j);
      value += line.slice(j, comma < 0 ? n : comma);
      fields.push(value);
      if (comma < 0) return { fields, open: false };
      i = comma + 1;
    } else {
      const comma = line.indexOf(',', i);
      fields.push(line.slice(i, comma < 0 ? n : comma));
      if (comma < 0) return { fields, open: false };
      i = comma + 1;
    }
  }
}

export async function* csvRecords(source: AsyncIterable<Uint8Array | string>, opts: CsvRecordsOptions = {}): AsyncGenerator<string[], void, undefined> {
  const max = opts.maxRecordBytes ?? 1 << 20;
  const decoder = new TextDecoder('utf-8');
  let rest = '';
  /** A record whose quoted field spans lines, as read so far. */
  let pending: string | null = null;

  function* lines(text: string, final: boolean): Generator<string[]> {
    let from = 0;
    for (;;) {
      const nl = text.indexOf('\n', from);
      if (nl < 0) break;
      let line = text.slice(from, nl);
      from = nl + 1;
      if (pending !== null) {
        line = `${pending}\n${line}`;
        pending = null;
      } else if (line.charCodeAt(line.length - 1) === 0x0d) {
        line = line.slice(0, -1);
      }
      if (line.length === 0) continue;
      if (line.indexOf('"') < 0) {
        yield line.split(',');
        continue;
      }
      const body = line.charCodeAt(line.length - 1) === 0x0d ? line.slice(0, -1) : line;
      const r = parseQuotedLine(body);
      if (!r.open) yield r.fields;
      else if (line.length > max) opts.onSkip?.();
      else pending = line;
    }
    rest = text.slice(from);
    if (rest.length > max && pending === null) {
      // A "line" this long is not a flow record; drop it rather than hold it.
      opts.onSkip?.();
      rest = '';
    }
    if (final) {
      const last = pending !== null ? `${pending}\n${rest}` : rest;
      pending = null;
      rest = '';
      const line = last.charCodeAt(last.length - 1) === 0x0d ? last.slice(0, -1) : last;
      if (line.length > 0) {
        const r = line.indexOf('"') < 0 ? { fields: line.split(','), open: false } : parseQuotedLine(line);
        if (r.open) opts.onSkip?.();
        else yield r.fields;
      }
    }
  }

  let first = true;
  for await (const chunk of source) {
    let text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    if (first && text.length > 0) {
      first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    yield* lines(rest + text, false);
  }
  yield* lines(rest + decoder.decode(), true);
}

// The binary column container written by lmql_nb.notebook.codec.pack (see its docstring
// for the layout): numbers as typed arrays, strings as arrays, no JSON lists of numbers.

const MAGIC = "LMNB";

/** Decode the column container written by lmql_nb.notebook.codec.pack. */
export function decodeColumns(data) {
  if (!data) return {};
  const bytes = data instanceof Uint8Array
    ? data
    : new Uint8Array(data.buffer ?? data, data.byteOffset ?? 0, data.byteLength);
  if (bytes.byteLength === 0) return {};
  const decoder = new TextDecoder();
  if (decoder.decode(bytes.subarray(0, 4)) !== MAGIC) throw new Error("lmql_nb: bad data header");
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, 8).getUint32(4, true);
  const header = JSON.parse(decoder.decode(bytes.subarray(8, 8 + headerLength)));
  const columns = {};
  for (const column of header.columns) {
    const start = header.data_start + column.offset;
    // slice() copies, which also aligns the data for the typed-array views
    const raw = bytes.slice(start, start + column.nbytes).buffer;
    columns[column.name] = decodeColumn(raw, column, decoder);
  }
  return columns;
}

function decodeColumn(raw, column, decoder) {
  switch (column.dtype) {
    case "f8": return new Float64Array(raw);
    case "i4": return new Int32Array(raw);
    case "u1": return new Uint8Array(raw);
    case "str": {
      const n = column.length;
      const offsets = new Uint32Array(raw, 0, n + 1);
      const text = new Uint8Array(raw, 4 * (n + 1));
      const strings = new Array(n);
      for (let i = 0; i < n; i++) strings[i] = decoder.decode(text.subarray(offsets[i], offsets[i + 1]));
      return strings;
    }
    default: throw new Error(`lmql_nb: unknown column type ${column.dtype}`);
  }
}


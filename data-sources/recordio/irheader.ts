// The payload header mxnet's recordio.pack writes (strategy-specs 7.8; apache/mxnet
// python/mxnet/recordio.py, struct 'IfQQ', 24 bytes, little-endian on the machines that write it):
//   flag u32 (count of extra float labels), label f32 (used when flag = 0), id u64, id2 u64,
//   then flag × f32 label vector, then the image bytes.

export const IRHEADER_BYTES = 24;
/** float32 holds every integer up to 2^24 exactly; class ids and key ranges beyond are ambiguous. */
export const FLOAT32_EXACT_LIMIT = 2 ** 24;

export interface IRHeader {
  readonly flag: number;
  /** The scalar label field (0 when flag > 0). */
  readonly label: number;
  readonly id: bigint;
  readonly id2: bigint;
  /** The flag float labels (empty when flag = 0). */
  readonly labels: Float32Array;
  /** Bytes after the header and labels: the encoded image (empty for index records). */
  readonly image: Uint8Array;
}

export function parseIrHeader(payload: Uint8Array, where: string): IRHeader {
  if (payload.length < IRHEADER_BYTES) throw new Error(`${where}: payload is ${payload.length} bytes, shorter than the ${IRHEADER_BYTES}-byte IRHeader`);
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const flag = dv.getUint32(0, true);
  const end = IRHEADER_BYTES + 4 * flag;
  if (end > payload.length) throw new Error(`${where}: IRHeader flag ${flag} announces ${flag} float labels but the payload has only ${payload.length - IRHEADER_BYTES} bytes after the header`);
  const labels = new Float32Array(flag);
  for (let i = 0; i < flag; i++) labels[i] = dv.getFloat32(IRHEADER_BYTES + 4 * i, true);
  return {
    flag, label: dv.getFloat32(4, true), id: dv.getBigUint64(8, true), id2: dv.getBigUint64(16, true),
    labels, image: payload.subarray(end),
  };
}

/** The class of an image record: `label` when flag = 0, else `label[0]` (insightface MXFaceDataset). */
export function classOf(h: IRHeader): number {
  return h.flag === 0 ? h.label : h.labels[0]!;
}

/** A float32 field that must hold a non-negative integer below 2^24; the reason why not otherwise. */
export function exactIndex(v: number): string | undefined {
  if (!Number.isFinite(v) || v < 0 || !Number.isInteger(v)) return `${v} is not a non-negative integer`;
  if (v >= FLOAT32_EXACT_LIMIT) return `${v} is ≥ 2^24, where float32 labels are no longer exact`;
  return undefined;
}

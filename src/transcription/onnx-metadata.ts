/**
 * @module transcription/onnx-metadata
 * Reads the `metadata_props` of an ONNX file without loading it: the ModelProto's top-level protobuf fields are
 * walked with positional reads and the (large) graph is skipped by its length, so a 100 MB model costs a few
 * small reads. The speech engine exits the whole process on a missing metadata key or an unknown language;
 * reading the metadata here first is how we refuse such input before it reaches the engine.
 */
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';

const METADATA_PROPS_FIELD = 14;
const MAX_METADATA_ENTRY_BYTES = 1 << 20;

class Reader {
  private readonly handle: FileHandle;
  constructor(handle: FileHandle) {
    this.handle = handle;
  }

  async bytes(position: number, length: number): Promise<Buffer> {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await this.handle.read(buffer, 0, length, position);
    return buffer.subarray(0, bytesRead);
  }
}

/** Decodes a base-128 varint; arithmetic rather than bit operations so lengths above 2 GiB stay exact. */
function varint(buffer: Buffer, offset: number): { value: number; next: number } {
  let value = 0;
  let scale = 1;
  for (let i = offset; i < buffer.length && i < offset + 10; i++) {
    const byte = buffer[i] ?? 0;
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if ((byte & 0x80) === 0) {
      return { value, next: i + 1 };
    }
  }
  throw new Error('truncated varint');
}

function parseStringEntry(payload: Buffer): [string, string] {
  let key = '';
  let value = '';
  let offset = 0;
  while (offset < payload.length) {
    const tag = varint(payload, offset);
    const field = Math.floor(tag.value / 8);
    const wireType = tag.value % 8;
    if (wireType !== 2) {
      throw new Error('unexpected wire type in metadata entry');
    }
    const length = varint(payload, tag.next);
    const text = payload.subarray(length.next, length.next + length.value).toString('utf8');
    if (field === 1) {
      key = text;
    } else if (field === 2) {
      value = text;
    }
    offset = length.next + length.value;
  }
  return [key, value];
}

/** The key/value metadata of an ONNX model file. Throws when the file is not a readable ONNX protobuf. */
export async function readOnnxMetadata(file: string): Promise<Record<string, string>> {
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const reader = new Reader(handle);
    const metadata: Record<string, string> = {};
    let position = 0;
    let fields = 0;
    while (position < size) {
      const head = await reader.bytes(position, 20);
      const tag = varint(head, 0);
      const field = Math.floor(tag.value / 8);
      const wireType = tag.value % 8;
      if (field === 0 || field > 100) {
        throw new Error(`not an ONNX model (field ${field} at byte ${position})`);
      }
      switch (wireType) {
        case 0:
          position += varint(head, tag.next).next;
          break;
        case 1:
          position += tag.next + 8;
          break;
        case 5:
          position += tag.next + 4;
          break;
        case 2: {
          const length = varint(head, tag.next);
          const start = position + length.next;
          if (start + length.value > size) {
            throw new Error('not an ONNX model (field runs past the end of the file)');
          }
          if (field === METADATA_PROPS_FIELD) {
            if (length.value > MAX_METADATA_ENTRY_BYTES) {
              throw new Error('metadata entry too large');
            }
            const [key, value] = parseStringEntry(await reader.bytes(start, length.value));
            metadata[key] = value;
          }
          position = start + length.value;
          break;
        }
        default:
          throw new Error(`not an ONNX model (wire type ${wireType} at byte ${position})`);
      }
      fields++;
    }
    if (fields === 0) {
      throw new Error('empty file');
    }
    return metadata;
  } finally {
    await handle.close();
  }
}

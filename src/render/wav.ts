/**
 * Reading just enough of a WAV file to know whether Asterisk's format_wav
 * will play it (16-bit signed PCM, mono, 8000 Hz: SPEC §5) and how long it
 * is. A refused file still ends the call "Completed", so we check our own
 * output instead of trusting the converter.
 *
 * The header is not assumed to be the canonical 44 bytes: real files carry
 * LIST/fact chunks before `data`, pad odd-sized chunks to even offsets, use an
 * 18-byte fmt (µ-law) or WAVE_FORMAT_EXTENSIBLE, and streamed WAVs (espeak-ng
 * --stdout) declare a data size larger than the file.
 */

export interface WavInfo {
  /** The sample format: 1 PCM, 3 float, 6 A-law, 7 µ-law; for WAVE_FORMAT_EXTENSIBLE, the sub-format's. */
  audioFormat: number;
  /** The tag as written in the fmt chunk (0xFFFE for WAVE_FORMAT_EXTENSIBLE). */
  formatTag: number;
  channels: number;
  sampleRate: number;
  bitsPerSample: number;
  /** Bytes per frame (all channels of one sample instant). */
  blockAlign: number;
  dataOffset: number;
  /** Bytes of samples actually present (a declared size past the end of the buffer is cut to it). */
  dataBytes: number;
  durationMs: number;
}

export const WAVE_FORMAT_PCM = 1;
const WAVE_FORMAT_EXTENSIBLE = 0xfffe;

/** Walks the RIFF chunks of `buf`; undefined when it is not a usable RIFF/WAVE file. */
export function readWavInfo(buf: Buffer): WavInfo | undefined {
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE') return undefined;
  let fmt: Omit<WavInfo, 'dataOffset' | 'dataBytes' | 'durationMs'> | undefined;
  let data: { offset: number; bytes: number } | undefined;
  let pos = 12;
  while (pos + 8 <= buf.length && !(fmt && data)) {
    const id = buf.toString('latin1', pos, pos + 4);
    const size = buf.readUInt32LE(pos + 4);
    const body = pos + 8;
    if (id === 'fmt ' && size >= 16 && body + 16 <= buf.length) {
      const formatTag = buf.readUInt16LE(body);
      let audioFormat = formatTag;
      // WAVEFORMATEXTENSIBLE: cbSize(2) validBits(2) channelMask(4), then the sub-format GUID whose first two bytes are the format code.
      if (formatTag === WAVE_FORMAT_EXTENSIBLE && size >= 40 && body + 26 <= buf.length) audioFormat = buf.readUInt16LE(body + 24);
      fmt = {
        audioFormat,
        formatTag,
        channels: buf.readUInt16LE(body + 2),
        sampleRate: buf.readUInt32LE(body + 4),
        blockAlign: buf.readUInt16LE(body + 12),
        bitsPerSample: buf.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      data = { offset: body, bytes: Math.min(size, buf.length - body) };
      // A streamed header's size is a placeholder: nothing after data can be trusted.
      if (size >= buf.length - body) break;
    }
    // Chunks are word-aligned: an odd size is followed by one pad byte.
    pos = body + size + (size & 1);
  }
  if (!fmt || !data || fmt.channels === 0 || fmt.sampleRate === 0 || fmt.bitsPerSample === 0) return undefined;
  const frameBytes = fmt.blockAlign || (fmt.channels * fmt.bitsPerSample) / 8;
  const frames = frameBytes > 0 ? Math.floor(data.bytes / frameBytes) : 0;
  return { ...fmt, dataOffset: data.offset, dataBytes: data.bytes, durationMs: Math.round((frames * 1000) / fmt.sampleRate) };
}

/** True for exactly what format_wav plays from a `.wav` file. */
export function isAsteriskWav(info: WavInfo | undefined): info is WavInfo {
  return !!info && info.formatTag === WAVE_FORMAT_PCM && info.channels === 1 && info.sampleRate === 8000 && info.bitsPerSample === 16;
}

/**
 * How long the file is silent at its start, measured from the samples: a
 * frame is silent when every channel is below `threshold` (a fraction of full
 * scale; the default 0.01 ≈ -40 dBFS sits well above dither and line noise
 * and well below speech). Integer PCM of 8 to 32 bits only.
 */
export function leadingSilenceMs(buf: Buffer, threshold = 0.01): number {
  const info = readWavInfo(buf);
  if (!info) throw new RangeError('not a RIFF/WAVE file');
  if (info.audioFormat !== WAVE_FORMAT_PCM || info.bitsPerSample % 8 !== 0 || info.bitsPerSample > 32) {
    throw new RangeError(`leading silence needs integer PCM, not format ${info.audioFormat} at ${info.bitsPerSample} bits`);
  }
  const bytes = info.bitsPerSample / 8;
  const frameBytes = info.blockAlign || bytes * info.channels;
  const limit = threshold * 2 ** (info.bitsPerSample - 1);
  const end = info.dataOffset + info.dataBytes - frameBytes;
  let frame = 0;
  for (let pos = info.dataOffset; pos <= end; pos += frameBytes, frame++) {
    for (let ch = 0; ch < info.channels; ch++) {
      const at = pos + ch * bytes;
      // 8-bit WAV is unsigned around 128; wider samples are signed little-endian.
      const sample = bytes === 1 ? buf.readUInt8(at) - 128 : buf.readIntLE(at, bytes);
      if (Math.abs(sample) > limit) return Math.round((frame * 1000) / info.sampleRate);
    }
  }
  return Math.round((frame * 1000) / info.sampleRate);
}

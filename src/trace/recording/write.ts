/**
 * The frames boot-trace itself writes into a recording (format.ts): the file header with the 'H' and
 * 'S' frames before QEMU starts, the 'M' and 'C' frames after it ends. The plugin appends the rest.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { crc32, deflateRawSync } from 'node:zlib';
import { messageOf, UserError } from '../../errors.js';
import { ENCODING, FRAME, fileHeader, frameHeader, type CaptureEnd, type RecordingHeader } from './format.js';

/** One frame's bytes; text over 64 KiB is deflated (the kernel's System.map: ~3.5 MB -> ~0.8 MB). */
export function encodeFrame(type: number, payload: Buffer): Buffer {
  let stored = payload;
  let encoding: number = ENCODING.raw;
  if (payload.length > 64 * 1024) {
    stored = deflateRawSync(payload, { level: 6 });
    encoding = ENCODING.deflate;
  }
  return Buffer.concat([frameHeader(type, encoding, stored, payload.length, 0, crc32(stored)), stored]);
}

/** Creates the recording with its file header, header frame and symbols frame. Throws UserError. */
export function startRecording(file: string, header: RecordingHeader, systemMap: string): void {
  try {
    writeFileSync(file, Buffer.concat([
      fileHeader(),
      encodeFrame(FRAME.header, Buffer.from(JSON.stringify(header), 'utf8')),
      encodeFrame(FRAME.symbols, Buffer.from(systemMap, 'latin1')),
    ]));
  } catch (err) {
    throw new UserError(`${file}: cannot create the recording (${messageOf(err)})`);
  }
}

/** Appends the module symbols (kallsyms lines, may be empty) and the capture's end. */
export function finishRecording(file: string, moduleSymbols: string, end: CaptureEnd): void {
  try {
    const parts: Buffer[] = [];
    if (moduleSymbols.length > 0) parts.push(encodeFrame(FRAME.modules, Buffer.from(moduleSymbols, 'latin1')));
    parts.push(encodeFrame(FRAME.captureEnd, Buffer.from(JSON.stringify(end), 'utf8')));
    appendFileSync(file, Buffer.concat(parts));
  } catch (err) {
    throw new UserError(`${file}: cannot finish the recording (${messageOf(err)})`);
  }
}

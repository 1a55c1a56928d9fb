/** Runs console analyzers straight over a sample, in chunks of a chosen size (1 = every byte boundary). */
import { readFileSync } from 'node:fs';
import { ConsoleParser, type ConsoleVisitor } from '../analyzers/console-lines.js';

export function feedConsole(path: string, visitor: ConsoleVisitor, chunkSize = 1 << 16): ConsoleParser {
  const data = readFileSync(path);
  const parser = new ConsoleParser(visitor);
  for (let i = 0; i < data.length; i += chunkSize) parser.push(data.subarray(i, i + chunkSize));
  parser.end();
  return parser;
}

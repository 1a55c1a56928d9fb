import { fileURLToPath } from 'node:url';

/** The path of a file in the repository's samples/ folder, from the source or the compiled tree alike. */
export function sample(name: string): string {
  const up = import.meta.url.includes('/dist/') ? '../../samples/' : '../samples/';
  return fileURLToPath(new URL(up + name, import.meta.url));
}

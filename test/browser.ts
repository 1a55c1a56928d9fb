/**
 * Headless Chromium (Debian's `chromium`, installed by scripts/setup.sh) for tests that check what a person
 * sees: the DOM after the page's scripts ran, and what the page logged on its console.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p)) ?? null;
export const NO_CHROMIUM = 'chromium not installed (apt-get install -y chromium; scripts/setup.sh does)';

export interface Page {
  /** The DOM as serialised HTML once the page settled (or the virtual time budget ran out). */
  dom: string;
  /** The page's console messages, one per entry, as Chromium logs them. */
  console: string[];
}

/**
 * Loads `url` and returns its DOM and console. `budgetMs` is Chromium's virtual time budget: timers and
 * loading run until the page is idle or that much virtual time has passed.
 */
export function loadPage(url: string, budgetMs = 20_000): Page {
  if (!CHROMIUM) throw new Error(NO_CHROMIUM);
  const profile = mkdtempSync(join(tmpdir(), 'boot-trace-chromium-'));
  try {
    const r = spawnSync(CHROMIUM, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`, '--window-size=1400,1000',
      '--enable-logging=stderr', '--v=0', `--virtual-time-budget=${budgetMs}`, '--dump-dom', url,
    ], { encoding: 'utf8', timeout: 180_000, maxBuffer: 256 << 20 });
    if (r.status !== 0) throw new Error(`chromium exited ${r.status}: ${r.stderr.slice(-2000)}`);
    // Console lines: [pid:tid:date:LEVEL:CONSOLE(line)] "message", source: url (line)
    const console = r.stderr.split('\n').filter((l) => /:CONSOLE[:(]/.test(l)).map((l) => l.replace(/^\[[^\]]*\] /, ''));
    return { dom: r.stdout, console };
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

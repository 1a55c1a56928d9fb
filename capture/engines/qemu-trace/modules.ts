/**
 * Kernel-module symbols from the appliance's console: when modules are loaded, its /init prints
 * their /proc/kallsyms lines (the modules' own symbol tables, at their load addresses) between
 *   BOOT_TRACE_MODULES_BEGIN and BOOT_TRACE_MODULES_END   (capture/appliance/init-script.ts)
 * console.log lines are "<t_us> <text>"; the text is a kallsyms line: "ffffffffc0a01000 t name\t[mod]".
 */
export function moduleSymbolsFromConsole(consoleLog: string): string {
  const begin = consoleLog.indexOf('BOOT_TRACE_MODULES_BEGIN');
  if (begin < 0) return '';
  const end = consoleLog.indexOf('BOOT_TRACE_MODULES_END', begin);
  const body = consoleLog.slice(consoleLog.indexOf('\n', begin) + 1, end < 0 ? consoleLog.length : consoleLog.lastIndexOf('\n', end) + 1);
  const out: string[] = [];
  for (const line of body.split('\n')) {
    const text = line.replace(/^\d+(?:\.\d+)?\s/, '').replace(/\r$/, '');
    if (/^[0-9a-f]{16} [A-Za-z] \S+\t\[[^\]\s]+\]$/.test(text) && !text.startsWith('0000000000000000')) out.push(text);
  }
  return out.length ? out.join('\n') + '\n' : '';
}

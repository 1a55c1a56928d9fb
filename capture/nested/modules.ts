/**
 * The kernel modules the nested harness's outer guest loads: virtio-blk (the results disk) and kvm_amd,
 * taken from the same Debian cloud kernel package the project boots (linux-image-<release>-unsigned).
 * That package ships no modules.dep (depmod runs at install time), so the load order comes from each
 * module's own `.modinfo` section: NUL-separated `key=value` strings, where `depends=` lists the modules
 * it needs, comma-separated (written by scripts/mod/modpost.c; `modinfo` shows the same text).
 *
 *   virtio_blk.ko .modinfo: ... "depends=virtio,virtio_ring" "name=virtio_blk" ...
 *   order for [virtio_pci, virtio_blk, kvm_amd]:
 *     virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk irqbypass kvm kvm_amd
 *
 * Cached in cacheDir('nested', 'modules', <release>)/ as <name>.ko plus order.txt (one name a line).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheDir } from '../../src/cache.js';
import { UserError } from '../../src/errors.js';
import { parseElf64, sectionData } from '../boot/elf.js';
import { downloadAndUnpack, removeTemp } from '../kernel/debian.js';

/** What the harness needs: the virtio PCI transport and block driver, and KVM for AMD SVM. */
export const WANTED_MODULES = ['virtio_pci', 'virtio_blk', 'kvm_amd'] as const;

export interface ModInfo {
  /** `name=` (the kernel's module name: dashes in the file name become underscores). */
  name: string;
  /** `depends=`: module names, possibly empty. */
  depends: string[];
}

/** The module name of a .ko file name: kvm-amd.ko -> kvm_amd (the kernel treats - and _ alike). */
export function moduleNameOf(file: string): string {
  return file.replace(/\.ko(\.xz|\.zst|\.gz)?$/, '').replaceAll('-', '_');
}

/** `name=` and `depends=` from a module's .modinfo section. Throws a UserError naming `file` if absent. */
export function readModInfo(buf: Buffer, file: string): ModInfo {
  const elf = parseElf64(buf, file);
  const sh = elf.sectionHeaders.find((s) => s.name === '.modinfo');
  if (!sh) throw new UserError(`${file}: no .modinfo section; not a kernel module?`);
  const fields = new Map<string, string>();
  for (const entry of sectionData(elf, sh).toString('latin1').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0 && !fields.has(entry.slice(0, eq))) fields.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  const name = fields.get('name') ?? moduleNameOf(file.split('/').pop()!);
  const dep = fields.get('depends') ?? '';
  return { name, depends: dep === '' ? [] : dep.split(',').map((d) => d.trim().replaceAll('-', '_')).filter((d) => d !== '') };
}

/**
 * The order to insmod `wanted` and everything they depend on: every module after its dependencies,
 * otherwise in the order first met (depth-first from `wanted`, dependencies in `depends=` order).
 * Throws a UserError for a module missing from `infos` or a dependency cycle.
 */
export function loadOrder(wanted: readonly string[], infos: ReadonlyMap<string, ModInfo>): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, chain: string[]): void => {
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'visiting') throw new UserError(`kernel modules: dependency cycle ${[...chain, name].join(' -> ')}`);
    const info = infos.get(name);
    if (!info) throw new UserError(`kernel modules: ${name} is needed${chain.length ? ` by ${chain[chain.length - 1]}` : ''} but not in the package`);
    state.set(name, 'visiting');
    for (const d of info.depends) visit(d, [...chain, name]);
    state.set(name, 'done');
    order.push(name);
  };
  for (const w of wanted) visit(w, []);
  return order;
}

export interface ModuleSet {
  /** Folder with <name>.ko files. */
  dir: string;
  /** Names in insmod order. */
  order: string[];
}

/**
 * The modules for kernel `release` (e.g. 6.1.0-57-cloud-amd64), from the cache or fetched with
 * `apt-get download linux-image-<release>-unsigned` (the same package capture/kernel/discover.ts takes
 * the vmlinuz from). Throws a UserError naming the package or module that is missing.
 */
export async function kernelModules(release: string, log: (line: string) => void): Promise<ModuleSet> {
  const base = cacheDir('nested', 'modules');
  const dir = join(base, release);
  const orderFile = join(dir, 'order.txt');
  if (existsSync(orderFile)) {
    const order = readFileSync(orderFile, 'utf8').split('\n').filter((l) => l !== '');
    if (order.every((m) => existsSync(join(dir, `${m}.ko`)))) return { dir, order };
  }
  const pkg = `linux-image-${release}-unsigned`;
  log(`nested-kvm: fetching kvm_amd and virtio modules from ${pkg} with apt-get into ${base}`);
  const { tmp, root } = await downloadAndUnpack(pkg, base);
  try {
    const modRoot = join(root, 'lib', 'modules', release);
    if (!existsSync(modRoot)) throw new UserError(`${pkg}: the package has no lib/modules/${release}`);
    const files = new Map<string, string>();
    const walk = (d: string): void => {
      for (const f of readdirSync(d)) {
        const p = join(d, f);
        if (statSync(p).isDirectory()) walk(p);
        else if (f.endsWith('.ko')) files.set(moduleNameOf(f), p);
      }
    };
    walk(modRoot);
    // Read .modinfo lazily: only the modules on the way from WANTED_MODULES.
    const infos = new Map<string, ModInfo>();
    const pending = [...WANTED_MODULES] as string[];
    while (pending.length > 0) {
      const name = pending.pop()!;
      if (infos.has(name)) continue;
      const file = files.get(name);
      if (!file) continue; // loadOrder names it
      const info = readModInfo(readFileSync(file), file);
      infos.set(name, info);
      pending.push(...info.depends);
    }
    const order = loadOrder(WANTED_MODULES, infos);
    const entry = join(tmp, 'entry');
    mkdirSync(entry);
    for (const m of order) renameSync(files.get(m)!, join(entry, `${m}.ko`));
    writeFileSync(join(entry, 'order.txt'), order.join('\n') + '\n');
    if (existsSync(dir)) removeTemp(dir); // an incomplete entry from an older layout
    renameSync(entry, dir);
    return { dir, order };
  } finally {
    removeTemp(tmp);
  }
}

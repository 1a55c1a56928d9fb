/**
 * The host phases of a capture's profile.json laid out on the trace/console clock, for the Chrome export's
 * and the report's timeline. The capture folder itself (file names, finding them, reading profile.json
 * and console.log) belongs to capture/output/.
 */
import type { Profile } from '../../capture/output/profile.js';

export interface HostPhase {
  name: string;
  /** Microseconds on the trace/console clock (0 = just after KVM_CREATE_VM); the phases before it are negative. */
  start: number;
  duration: number;
}

/**
 * Host phases laid end to end in the order profile.json lists them (the order they ran). The KVM engine's
 * trace and console clocks start right after vm_create (capture/engines/kvm/vm.ts), so it and the phases
 * before it get negative start times; other engines' clocks start with their first phase.
 */
export function hostPhases(profile: Pick<Profile, 'phases_us'>): HostPhase[] {
  const phases = profile.phases_us;
  const names = Object.keys(phases).filter((n) => n !== 'total' && typeof phases[n] === 'number');
  const upTo = names.indexOf('vm_create');
  const zeroAt = names.slice(0, upTo + 1).reduce((s, n) => s + phases[n]!, 0);
  let t = -zeroAt;
  return names.map((name) => {
    const phase = { name, start: t, duration: phases[name]! };
    t += phases[name]!;
    return phase;
  });
}

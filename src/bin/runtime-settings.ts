// The Node.js runtime settings the agent is shipped with: one source of truth for
// systemd/nodewall.service (node's arguments in ExecStart=, Environment=), deploy/daemonset.yaml
// (NODE_OPTIONS and env of the container) and the scale bench's agent (bench/scale-bench.ts).
// test/bin/runtime-settings.test.ts checks that the unit and the DaemonSet say exactly this,
// that node accepts the flags in NODE_OPTIONS and that they take effect.
//
// Why (README "Performance at cluster scale", measured at 100k pods with NODEWALL_BENCH_SMAPS=1):
// - --max-semi-space-size=4: V8's young generation grows to 2 x 16 MiB during the first build and
//   stays committed (and resident) afterwards although a scavenge leaves it empty (it did not
//   shrink in 40 s of idling either). 2 x 4 MiB keeps ~25 MB less resident at the same start CPU;
//   1 MiB would keep another ~7 MB less but costs the 100k-pod start ~15% more CPU (more of the
//   first build promoted) and raises the peak.
// - MALLOC_ARENA_MAX: glibc gives each thread that mallocs (V8's GC helpers, libuv's pool) an
//   arena of its own, up to 8 per core, whose freed pages mostly stay resident.
// - MALLOC_TRIM_THRESHOLD_ (glibc's default value, 128 KiB, but set): setting it turns off glibc's
//   dynamic mmap threshold, which otherwise rises to the size of the biggest block freed (up to
//   32 MiB: the start's big buffers and V8's compiler zones) so that later big blocks come from the
//   main arena and stay resident after free; set, blocks of 128 KiB and more are mapped and
//   returned on free, and the arena's top is trimmed above 128 KiB.
// glibc only (musl ignores MALLOC_*).
// Both only take effect when node starts: v8.setFlagsFromString() after start does not shrink
// the young generation (measured), and glibc reads MALLOC_* once.

/** V8 / node flags, given to node before the script (systemd) or in NODE_OPTIONS (DaemonSet). */
export const agentNodeFlags: readonly string[] = ['--max-semi-space-size=4'];

/** Environment of the agent's process (glibc malloc tuning). */
export const agentEnv: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2', MALLOC_TRIM_THRESHOLD_: '131072' };

/** The flags as one NODE_OPTIONS value. */
export function agentNodeOptions(): string {
  return agentNodeFlags.join(' ');
}

/**
 * Which of the shipped settings this process does not run with: flags missing from node's arguments and
 * NODE_OPTIONS, env entries missing or different. Empty under the shipped unit and DaemonSet. The agent
 * logs it once at start, so an operator running it some other way sees why its memory is higher.
 */
export function missingRuntimeSettings(execArgv: readonly string[], env: Readonly<Record<string, string | undefined>>): string[] {
  const given = new Set([...execArgv, ...(env['NODE_OPTIONS'] ?? '').split(/\s+/).filter((f) => f !== '')]);
  const missing = agentNodeFlags.filter((f) => !given.has(f));
  for (const [k, v] of Object.entries(agentEnv)) if (env[k] !== v) missing.push(`${k}=${v}`);
  return missing;
}

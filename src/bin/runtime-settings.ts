// The Node.js runtime settings the agent is shipped with: one source of truth for
// systemd/nodewall.service (node's arguments in ExecStart=, Environment=), deploy/daemonset.yaml
// (NODE_OPTIONS and env of the container) and the scale bench's agent (bench/scale-bench.ts).
// test/bin/runtime-settings.test.ts checks that the unit and the DaemonSet say exactly this,
// that node accepts the flags in NODE_OPTIONS and that they take effect.
//
// Why (README "Performance at cluster scale", measured at 100k pods with NODEWALL_BENCH_SMAPS=1):
// - No V8 flag. --max-semi-space-size=4 was tried in session 16 (measured, then dropped): it keeps the
//   young generation at 2 x 4 MiB, but V8's memory reducer shrinks the default 2 x 16 MiB young
//   generation anyway once the agent idles ~15 s after a burst (100k pods: settled RSS 147 MB without
//   any setting, 133-134 with the malloc settings below, with or without the flag), while the small
//   young generation costs every pass CPU (100k pods, quiet: pod add p50 15 -> 19-21 ms, CCNP change ->
//   kernel 208 -> 264-311 ms: what a pass allocates survives more scavenges and is promoted).
// - MALLOC_ARENA_MAX: glibc gives each thread that mallocs (V8's GC helpers, libuv's pool) an
//   arena of its own, up to 8 per core, whose freed pages mostly stay resident.
// - MALLOC_TRIM_THRESHOLD_ (glibc's default value, 128 KiB, but set): setting it turns off glibc's
//   dynamic mmap threshold, which otherwise rises to the size of the biggest block freed (up to
//   32 MiB: the start's big buffers and V8's compiler zones) so that later big blocks come from the
//   main arena and stay resident after free; set, blocks of 128 KiB and more are mapped and
//   returned on free, and the arena's top is trimmed above 128 KiB.
// glibc only (musl ignores MALLOC_*).
// They only take effect when node starts: glibc reads MALLOC_* once (V8 flags likewise belong on
// node's command line or in NODE_OPTIONS: v8.setFlagsFromString() after start does not resize the heap).

/** V8 / node flags, given to node before the script (systemd) or in NODE_OPTIONS (DaemonSet). */
export const agentNodeFlags: readonly string[] = [];

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
